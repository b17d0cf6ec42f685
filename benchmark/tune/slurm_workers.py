"""``benchmark tune --executor slurm --workers K``: K Optuna workers as one SLURM job array on the same study.

Each array task opens the study on the shared storage (PostgreSQL) and runs its share of the trials, logging
to the MLflow server, exactly as a local worker process does (`benchmark.tune.workers.worker_main`). The
submitting process follows the study until every task ended; Ctrl-C cancels the array. Trials of a task
that died are failed and re-queued by the heartbeat check when the study is next opened.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import optuna

from benchmark.core.errors import BenchmarkError
from benchmark.run.slurm import slurm_executor
from benchmark.run.threads import apply_thread_policy
from benchmark.tracking.store import configure
from benchmark.tune.request import TuneObserver
from benchmark.tune.workers import StudySetup, load_data, optimize, poll_trials

__all__ = ["run_workers_on_slurm", "slurm_worker"]

log = logging.getLogger(__name__)

_POLL_S = 5.0


def slurm_worker(setup: StudySetup) -> str | None:
    """One array task: its share of the trials; returns the user error that stopped it, else None."""
    apply_thread_policy(setup.request.threads or int(os.environ.get("SLURM_CPUS_PER_TASK", "1") or 1))
    try:
        configure(setup.request.tracking.uri)
        bags, splits, _, _ = load_data(setup.request)
        optimize(setup, bags, splits, None)
    except BenchmarkError as exc:
        return f"worker {setup.worker}: {exc}"
    return None


def run_workers_on_slurm(setup: StudySetup, observer: TuneObserver, study: optuna.Study) -> None:
    """Submit ``--workers`` array tasks on the study, report finished trials, fail on a task's error."""
    k = setup.request.workers
    # The submitting process already made (or regenerated) the split file; tasks only read it.
    setup = dataclasses.replace(setup, request=dataclasses.replace(setup.request, new_splits=False))
    shares = [setup.n_trials // k + (i < setup.n_trials % k) for i in range(k)]
    setups = [dataclasses.replace(setup, n_trials=n, worker=i) for i, n in enumerate(shares) if n > 0]
    executor = slurm_executor(setup.request.slurm, f"tune-{setup.name}")
    jobs = executor.map_array(slurm_worker, setups)
    log.warning(
        "submitted %d Optuna worker(s) on study %s as SLURM array %s; logs in %s",
        len(jobs), setup.name, jobs[0].job_id.split("_")[0], setup.request.slurm.folder,
    )  # fmt: skip
    seen = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
    try:
        while not all(job.done() for job in jobs):
            time.sleep(_POLL_S)
            seen = poll_trials(study, seen, observer, setup.model)
    except KeyboardInterrupt:
        for job in jobs:
            job.cancel(check=False)
        raise
    poll_trials(study, seen, observer, setup.model)
    errors = []
    for job in jobs:
        try:
            message = job.result()
        except Exception as exc:  # noqa: BLE001 - a dead task (cancelled, killed, pre-empted)
            message = f"task {job.job_id} ended {job.state} ({type(exc).__name__})"
        if message:
            errors.append(message)
    if errors:
        raise BenchmarkError(
            f"{len(errors)} of {len(jobs)} SLURM worker(s) failed: {'; '.join(errors)}. Finished trials are "
            "kept; rerun the same command to continue."
        )
