"""Running a study's trials: in this process, or split over spawned worker processes on one storage.

Each worker opens the same storage and study, loads the data itself, and runs its share of the trials
(``--trials`` N over K workers: N // K each, the first N mod K one more, so the total is exactly N when no
worker dies). The parent polls the storage to report finished trials.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import sys
import time
from dataclasses import dataclass

import optuna
from mlflow.tracking import MlflowClient

from benchmark.core.errors import BenchmarkError
from benchmark.data import BagCollection, load_dataset
from benchmark.run.runner import splits_for
from benchmark.run.threads import apply_thread_policy
from benchmark.tracking.store import configure
from benchmark.tune.objective import FoldProvider, Objective, TrialFailed, TrialHooks
from benchmark.tune.request import TuneObserver, TuneRequest, make_pruner
from benchmark.tune.space import space_for
from benchmark.tune.storage import open_storage
from benchmark.tune.trial_runs import MlflowTrialHooks, study_experiment

__all__ = ["StudySetup", "load_data", "open_study", "optimize", "poll_trials", "run_workers", "worker_main"]

log = logging.getLogger(__name__)


class _ObserverHooks(TrialHooks):
    def __init__(self, observer: TuneObserver, model: str) -> None:
        self.observer, self.model = observer, model

    def on_fold(self, trial, fold, fit, value) -> None:  # noqa: ANN001 - see TrialHooks
        self.observer.on_fold(self.model, trial.number, fold, value)

    def on_trial_end(self, trial, state, value, error="") -> None:  # noqa: ANN001 - see TrialHooks
        self.observer.on_trial_end(self.model, trial.number, state, value)


def open_study(request: TuneRequest, name: str, budget: dict, *, worker: int = 0) -> optuna.Study:
    """Create or load the study (maximise) with heartbeats, the request's pruner and a TPE sampler."""
    storage = open_storage(
        request.storage_url,
        heartbeat_interval=request.heartbeat,
        grace_period=request.grace,
        max_retry=request.max_retry,
    )
    # Distinct, reproducible sampler seeds per worker and per resume (same seeds would duplicate trials).
    sampler = optuna.samplers.TPESampler(seed=request.seed + 1009 * worker + len(_existing(storage, name)))
    return optuna.create_study(
        storage=storage,
        study_name=name,
        direction="maximize",
        sampler=sampler,
        pruner=make_pruner(request.pruner),
        load_if_exists=True,
    )


def _existing(storage, name: str) -> list:  # noqa: ANN001 - any Optuna storage
    try:
        return storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False)
    except KeyError:
        return []


@dataclass(frozen=True)
class StudySetup:
    """One study's work for one process: the request, the model and study, the budget and a trial share."""

    request: TuneRequest
    model: str
    name: str
    budget: dict
    n_trials: int
    worker: int = 0


def _objective(setup: StudySetup, bags: BagCollection, splits, hooks: TrialHooks) -> Objective:  # noqa: ANN001
    r = setup.request
    base = r.overrides
    folds = [int(f) for f in setup.budget["folds"].split(",")]
    return Objective(
        model=setup.model,
        space=space_for(setup.model),
        data=r.data,
        cv=r.cv,
        seed=r.seed,
        base=base,
        folds=FoldProvider(bags, splits, folds),
        metric=r.metric,
        hooks=hooks,
    )


def optimize(
    setup: StudySetup,
    bags: BagCollection,
    splits,
    observer: TuneObserver | None,  # noqa: ANN001
    study: optuna.Study | None = None,
) -> None:
    """Run ``setup.n_trials`` trials of the study in this process, each logged to MLflow."""
    r = setup.request
    study = study or open_study(r, setup.name, setup.budget, worker=setup.worker)
    client = MlflowClient()
    exp_id = study_experiment(client, setup.name, setup.budget)
    inner = _ObserverHooks(observer, setup.model) if observer is not None else None
    hooks = MlflowTrialHooks(client, exp_id, setup.name, setup.budget, inner)
    study.optimize(
        _objective(setup, bags, splits, hooks),
        n_trials=setup.n_trials,
        timeout=r.timeout,
        catch=(TrialFailed,),
        gc_after_trial=True,
    )


def load_data(request: TuneRequest) -> tuple[BagCollection, object, object, str]:
    """The dataset and the run's split table, file and digest (the same files `benchmark run` uses)."""
    bags = load_dataset(request.data)
    splits, path, digest = splits_for(request, bags)
    return bags, splits, path, digest


def worker_main(setup: StudySetup) -> None:
    """Entry point of a spawned worker process: same storage, same study, its share of the trials."""
    apply_thread_policy(setup.request.threads or 1)  # one per worker unless told: workers share the CPUs
    logging.basicConfig(level=logging.WARNING, format=f"worker {setup.worker}: %(message)s")
    try:
        configure(setup.request.tracking.uri)
        bags, splits, _, _ = load_data(setup.request)
        optimize(setup, bags, splits, None)
    except BenchmarkError as exc:
        sys.stderr.write(f"error: worker {setup.worker}: {exc}\n")
        sys.exit(exc.exit_code)


def run_workers(setup: StudySetup, observer: TuneObserver, study: optuna.Study) -> None:
    """Spawn ``--workers`` processes on the study's storage, report finished trials, fail on a worker error."""
    k = setup.request.workers
    # The parent already made (or regenerated) the split file; workers only read it.
    setup = dataclasses.replace(setup, request=dataclasses.replace(setup.request, new_splits=False))
    shares = [setup.n_trials // k + (i < setup.n_trials % k) for i in range(k)]
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(
            target=worker_main, args=(dataclasses.replace(setup, n_trials=n, worker=i),), daemon=False
        )
        for i, n in enumerate(shares)
        if n > 0
    ]
    for p in procs:
        p.start()
    seen = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
    try:
        while any(p.is_alive() for p in procs):
            time.sleep(1.0)
            seen = poll_trials(study, seen, observer, setup.model)
    except BaseException:
        for p in procs:
            p.terminate()
        raise
    finally:
        for p in procs:
            p.join()
    poll_trials(study, seen, observer, setup.model)
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    if failed:
        raise BenchmarkError(
            f"{len(failed)} of {len(procs)} worker(s) exited with codes {failed}; their messages "
            "are above. Finished trials are kept; rerun the same command to continue."
        )


def poll_trials(study: optuna.Study, seen: set[int], observer: TuneObserver, model: str) -> set[int]:
    """Report the trials that finished since ``seen`` (their numbers); returns the updated set."""
    for t in study.get_trials(deepcopy=False):
        if t.state.is_finished() and t.number not in seen:
            seen.add(t.number)
            observer.on_trial_end(model, t.number, t.state.name, t.value)
    return seen
