"""``benchmark tune``: one Optuna study per model, equal budget, resumable, one or many workers.

Per model: load the data and the run's split file, create or resume the study ``<dataset>-<model>`` (or
``--study``) in the storage, record the budget (trials, epochs, early stopping, folds, metric) in the
study's user attrs and the MLflow experiment ``tune-<study>``, run ``--trials`` more trials — in this
process, or split over ``--workers`` spawned processes on the same storage — then close the runs of dead
workers and tag the best trial. A resumed study must have the same budget (else a `ConfigError`).
Trial 0 of a new study is the model's default configuration (enqueued), so tuning starts from it.
"""

from __future__ import annotations

import logging
import os

import optuna
from mlflow.tracking import MlflowClient

from benchmark.core.config import SELECTION_METRICS, RunConfig
from benchmark.core.errors import ConfigError
from benchmark.data import BagCollection
from benchmark.run.resolve import expand_models, resolve_run_config
from benchmark.run.slurm import check_cluster_store
from benchmark.tracking.store import DEFAULT_TRACKING_URI, configure
from benchmark.tune.request import PRUNERS, StudySummary, TuneObserver, TuneRequest, make_pruner, study_name
from benchmark.tune.slurm_workers import run_workers_on_slurm
from benchmark.tune.space import space_for
from benchmark.tune.storage import quiet_experimental, storage_kind, supports_many_workers
from benchmark.tune.trial_runs import finalize_study_runs, study_experiment
from benchmark.tune.workers import StudySetup, load_data, open_study, optimize, run_workers

__all__ = ["PRUNERS", "StudySummary", "TuneObserver", "TuneRequest", "make_pruner", "run_tune", "study_name"]

log = logging.getLogger(__name__)

optuna.logging.set_verbosity(optuna.logging.WARNING)  # "A new study created…" at INFO; we report ourselves

# Budget keys a resumed study must match (trials are additive and recorded separately).
_BUDGET_KEYS = (
    "model",
    "dataset",
    "data_fingerprint",
    "split_digest",
    "folds",
    "metric",
    "epochs",
    "patience",
    "min_epochs",
    "seed",
)


def _validate(request: TuneRequest) -> None:
    if request.trials < 1:
        raise ConfigError(f"--trials must be ≥ 1, got {request.trials}.")
    if request.workers < 1:
        raise ConfigError(f"--workers must be ≥ 1, got {request.workers}.")
    if request.timeout is not None and request.timeout <= 0:
        raise ConfigError(f"--timeout must be > 0 seconds, got {request.timeout}.")
    if request.heartbeat < 1 or (request.grace is not None and request.grace < request.heartbeat):
        raise ConfigError("--heartbeat must be ≥ 1 s and --grace ≥ --heartbeat.")
    if request.workers > 1 and not supports_many_workers(request.storage_url):
        raise ConfigError(
            f"--workers {request.workers} needs a storage several processes can write at once, but "
            f"{request.storage_url} is SQLite (one writer at a time); use --storage postgresql://user:pw@host/db "
            "(also for several machines) or --storage journal:optuna.log (one machine)."
        )
    if request.executor == "slurm":
        if storage_kind(request.storage_url) != "server":
            raise ConfigError(
                f"--executor slurm needs a study storage every node can reach: --storage "
                f"postgresql://user:pw@host/db, not {request.storage_url}."
            )
        check_cluster_store(
            request.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
        )
    make_pruner(request.pruner)
    if request.metric not in SELECTION_METRICS:
        raise ConfigError(
            f"--metric {request.metric!r} is not a validation metric; choose one of "
            f"{', '.join(sorted(SELECTION_METRICS))}."
        )


def _budget(
    request: TuneRequest, config: RunConfig, bags: BagCollection, digest: str, folds: list[int]
) -> dict:
    return {
        "model": config.model,
        "dataset": bags.name,
        "data_fingerprint": bags.fingerprint,
        "split_digest": digest,
        "folds": ",".join(map(str, folds)),
        "protocol": config.cv.protocol,
        "metric": request.metric,
        "epochs": config.train.epochs,
        "patience": config.train.patience,
        "min_epochs": config.train.min_epochs,
        "seed": config.seed,
        "pruner": request.pruner,
    }


def _check_budget(study: optuna.Study, budget: dict) -> None:
    recorded = study.user_attrs.get("budget")
    if recorded is None:
        study.set_user_attr("budget", budget)
        return
    diff = [k for k in _BUDGET_KEYS if str(recorded.get(k)) != str(budget.get(k))]
    if diff:
        shown = ", ".join(f"{k}={recorded.get(k)!r} (now {budget.get(k)!r})" for k in diff)
        raise ConfigError(
            f"study {study.study_name} was created with another budget or data: {shown}; "
            "rerun with the same options, or start a new study with --study NAME."
        )


def default_params(config: RunConfig) -> dict[str, object]:
    """The model's defaults under the search spaces' parameter names (trial 0 of a new study)."""
    params: dict[str, object] = {"train.lr": config.train.lr, "train.weight_decay": config.train.weight_decay}
    params.update({f"model.{k}": v for k, v in config.model_params.items()})
    weights = {t.name: t.weight for t in config.loss}
    if "instance" in weights:  # CLAM: w · bag CE + (1 − w) · instance loss
        params["clam.bag_weight"] = weights["fine_ce"]
    return params


def run_tune(request: TuneRequest, observer: TuneObserver | None = None) -> list[StudySummary]:
    """Run ``request.trials`` more trials of every requested model's study; returns one summary per model."""
    observer = observer or TuneObserver()
    _validate(request)
    models = expand_models(request.models)
    if len(models) > 1 and (request.overrides.model or request.overrides.loss):
        raise ConfigError("--set model.*/loss.* apply to one model; tune models separately.")
    for m in models:
        space_for(m)  # every model has a space (else: error listing those that do)
    configure(request.tracking.uri)
    bags, splits, _, digest = load_data(request)
    total = request.cv.total_folds
    folds = list(range(total)) if request.folds is None else sorted(set(request.folds))
    if not folds or any(not 0 <= f < total for f in folds):
        raise ConfigError(f"--fold {request.folds} out of range 0..{total - 1}.")
    summaries = []
    for model in models:
        config = resolve_run_config(
            model,
            data=request.data,
            cv=request.cv,
            seed=request.seed,
            overrides=request.overrides,
        )
        name = study_name(request, model, len(models))
        budget = _budget(request, config, bags, digest, folds)
        study = open_study(request, name, budget)
        _check_budget(study, budget)
        if request.default_trial and not study.trials:
            study.enqueue_trial(default_params(config), user_attrs={"source": "model defaults"})
        existing = len(study.trials)
        client = MlflowClient()
        study_experiment(client, name, budget)  # created here, before any worker, so workers never race on it
        observer.on_study_start(model, name, request.trials, existing)
        setup = StudySetup(request, model, name, budget, request.trials)
        if request.executor == "slurm":
            run_workers_on_slurm(setup, observer, study)
        elif request.workers == 1:
            optimize(setup, bags, splits, observer, study)
        else:
            run_workers(setup, observer, study)
        summaries.append(_finish(request, study, name, model, budget))
        observer.on_study_end(summaries[-1])
    return summaries


def _finish(request: TuneRequest, study: optuna.Study, name: str, model: str, budget: dict) -> StudySummary:
    """Fail stale trials, record the requested trials, close dead runs, tag the best; summarise the study."""
    if storage_kind(request.storage_url) != "journal":
        with quiet_experimental():
            optuna.storages.fail_stale_trials(
                study
            )  # trials of dead workers: FAIL + re-queued for the next run
    requested = int(study.user_attrs.get("budget.trials_requested", 0)) + request.trials
    study.set_user_attr("budget.trials_requested", requested)
    client = MlflowClient()
    exp_id = study_experiment(client, name, {**budget, "trials_requested": requested})
    finalize_study_runs(client, exp_id, study)
    states: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        states[t.state.name] = states.get(t.state.name, 0) + 1
    try:
        best = study.best_trial
        best_n, best_v, best_p = best.number, best.value, dict(best.params)
    except ValueError:
        best_n = best_v = None
        best_p = {}
    return StudySummary(
        model,
        name,
        request.storage_url,
        f"tune-{name}",
        states,
        best_n,
        best_v,
        best_p,
        {**budget, "trials_requested": requested},
    )
