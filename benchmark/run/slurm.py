"""``benchmark run --executor slurm``: the cells as one SLURM job array, submitted through submitit.

The planner (`run_cells_on_slurm`) opens every parent run, submits one array task per unfinished cell and,
with ``--wait``, follows them: a task whose job died (pre-empted, ``scancel``, out of memory, a killed
process) is resubmitted up to ``--retries`` times after its dead child run is marked KILLED; a cell that fails
on a user error (`BenchmarkError`) is not retried and its message is shown. Ctrl-C cancels the array. Each
task (`slurm_cell`) runs its cell and then, under a file lock in the shared submitit folder, closes the parent
if all of the parent's planned folds are finished and nobody closed this set of folds before: every parent is
closed exactly once, by whichever task finishes its last fold, with or without ``--wait``.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmark.compare.overview import update_overview
from benchmark.core.config import RunConfig
from benchmark.core.errors import BenchmarkError, ConfigError, TrainingError
from benchmark.run.executors import CellTask, cell_context, init_worker, plan_cells, run_cell
from benchmark.run.model_runs import RunContext, close_model
from benchmark.run.outcome import FoldOutcome
from benchmark.run.request import RunRequest, SlurmOptions
from benchmark.tracking.liveness import mark_stale_fold, worker_tags
from benchmark.tracking.store import children, finished_folds

__all__ = ["CellResult", "check_cluster_store", "run_cells_on_slurm", "slurm_cell", "slurm_executor"]

log = logging.getLogger(__name__)

_POLL_S = 5.0
_CLOSED = "benchmark.closed_folds"  # parent tag: digest of the fold runs it was last closed with


@dataclass(frozen=True)
class CellResult:
    """What an array task returns: the child run and outcome, or the user error that ended the cell."""

    run_id: str | None
    outcome: FoldOutcome | None
    error: str | None = None
    closed_parent: bool = False


def _close_once(
    task: CellTask, folds: Sequence[int], ctx: RunContext, config: RunConfig, locks: Path
) -> bool:
    """Close the parent if all ``folds`` are finished and this set of fold runs was not closed before."""
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{task.parent_id}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        client = ctx.client
        done = finished_folds(client, task.exp_id, task.parent_id)
        if not all(f in done for f in folds):
            return False
        stamp = hashlib.sha256(",".join(sorted(r.info.run_id for r in done.values())).encode()).hexdigest()[
            :16
        ]
        if client.get_run(task.parent_id).data.tags.get(_CLOSED) == stamp:
            return False
        close_model(ctx, config, task.method, task.parent_id, done)
        client.set_tag(task.parent_id, _CLOSED, stamp)
    try:
        update_overview(
            task.tracking.uri,
            task.tracking.experiment or ctx.bags.name,
            split_digest=task.digest,
        )
    except Exception:  # noqa: BLE001 - the parent is closed; the overview is a convenience
        log.warning("could not refresh the experiment overview", exc_info=True)
    return True


def _forget_earlier_attempt(ctx: RunContext, task: CellTask) -> None:
    """A requeued job (pre-empted, node failure, ``scontrol requeue``) starts its cell again under the same
    job id: the child run its earlier attempt left RUNNING is dead, so it becomes KILLED (and is retired once
    this attempt finishes)."""
    mine = worker_tags().get("benchmark.worker.slurm_job")
    for run in children(ctx.client, task.exp_id, task.parent_id):
        tags = run.data.tags
        if (
            run.info.status == "RUNNING"
            and tags.get("benchmark.fold") == str(task.fold)
            and mine
            and tags.get("benchmark.worker.slurm_job") == mine
        ):
            mark_stale_fold(ctx.client, task.exp_id, task.parent_id, task.fold, f"job {mine} was requeued")
            return


def slurm_cell(task: CellTask, folds: Sequence[int], locks: str) -> CellResult:
    """One array task: run the cell, then close its parent if it was the last one (exactly once)."""
    gpus = int(os.environ.get("SLURM_GPUS_PER_TASK", "0") or 0)
    init_worker("cuda" if gpus else None, int(os.environ.get("SLURM_CPUS_PER_TASK", "1") or 1))
    try:
        context = cell_context(task)
        _forget_earlier_attempt(context[0], task)
        run_id, outcome = run_cell(task, context)
    except BenchmarkError as exc:  # deterministic: retrying would fail again
        return CellResult(None, None, error=str(exc))
    closed = _close_once(task, folds, *context, Path(locks))
    return CellResult(run_id, outcome, closed_parent=closed)


def check_cluster_store(uri: str) -> None:
    """Refuse a SQLite MLflow store for work spread over nodes (one line saying what to use instead)."""
    if uri.startswith("sqlite:"):
        raise ConfigError(
            f"--executor slurm with --tracking-uri {uri}: SQLite is not safe for workers on several nodes "
            "(file locking on shared file systems); use an MLflow server every node can reach, "
            "--tracking-uri http://HOST:5000 (docs/scaling.md), or --executor local on one machine."
        )


def slurm_executor(opts: SlurmOptions, name: str):  # noqa: ANN202 - submitit is an optional dependency
    try:
        import submitit
    except ImportError as exc:
        raise ConfigError("--executor slurm needs submitit: pip install 'hmil-bench[slurm]'.") from exc
    executor = submitit.AutoExecutor(folder=opts.folder, cluster="slurm")
    params: dict[str, object] = {
        "name": name,
        "timeout_min": opts.time_min,
        "cpus_per_task": opts.cpus_per_task,
        "slurm_array_parallelism": opts.array_parallelism,
        # requeue: a pre-empted or failed-node task starts its cell again (see _forget_earlier_attempt)
        "slurm_additional_parameters": {"chdir": os.getcwd(), "requeue": True},
    }
    if opts.partition:
        params["slurm_partition"] = opts.partition
    if opts.gpus_per_task:
        params["slurm_gpus_per_task"] = opts.gpus_per_task
    if opts.mem_gb:
        params["mem_gb"] = opts.mem_gb
    executor.update_parameters(**params)
    return executor


def run_cells_on_slurm(
    request: RunRequest, ctx: RunContext, configs: Mapping[str, RunConfig], methods: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, list[int]]]:
    """Submit every unfinished cell as one job array; with ``request.slurm.wait`` follow it to the end.

    Returns:
        ``(method → parent id, method → skipped folds)``.

    Raises:
        TrainingError: with ``wait``, cells that failed (user errors, or jobs that died more than
            ``retries`` times); their child runs are FAILED/KILLED and their parents not FINISHED.
    """
    opts = request.slurm
    plan = plan_cells(request, ctx, configs, methods)
    parents, skipped, tasks = plan.parents, plan.skipped, plan.tasks
    if not tasks:
        return parents, skipped
    folds, locks = list(ctx.folds), str(Path(opts.folder).resolve() / "locks")
    executor = slurm_executor(opts, f"benchmark-{ctx.bags.name}")
    jobs = executor.map_array(slurm_cell, tasks, [folds] * len(tasks), [locks] * len(tasks))
    log.warning(
        "submitted %d cell(s) as SLURM array %s; logs in %s; follow with `benchmark status --dataset %s`",
        len(tasks), jobs[0].job_id.split("_")[0], opts.folder, ctx.bags.name,
    )  # fmt: skip
    if opts.wait:
        try:
            _follow(executor, dict(zip(jobs, tasks, strict=True)), ctx, opts, folds, locks)
        except KeyboardInterrupt:
            for method in {t.method for t in tasks}:
                ctx.client.set_terminated(parents[method], "KILLED")
            raise
    return parents, skipped


def _follow(executor, pending: dict, ctx: RunContext, opts: SlurmOptions, folds, locks) -> None:  # noqa: ANN001
    """Wait for every task; resubmit dead jobs (up to ``opts.retries``); cancel everything on Ctrl-C."""
    from submitit.core.utils import FailedJobError, UncompletedJobError

    attempts = {id(t): 1 for t in pending.values()}
    failures: list[str] = []
    failed: list[tuple[CellTask, str]] = []
    try:
        while pending:
            for job in [j for j in pending if j.done()]:
                task = pending.pop(job)
                try:
                    result = job.result()
                except (UncompletedJobError, FailedJobError) as exc:
                    reason = (
                        f"{job.state}, {type(exc).__name__}"  # e.g. "CANCELLED by 0, UncompletedJobError"
                    )
                    mark_stale_fold(
                        ctx.client, ctx.exp_id, task.parent_id, task.fold, f"job {job.job_id} died"
                    )
                    if attempts[id(task)] <= opts.retries:
                        attempts[id(task)] += 1
                        new = executor.submit(slurm_cell, task, folds, locks)
                        log.warning(
                            "%s fold %d: job %s died (%s); resubmitted as %s",
                            task.method,
                            task.fold,
                            job.job_id,
                            reason,
                            new.job_id,
                        )
                        pending[new] = task
                    else:
                        failures.append(f"{task.method} fold {task.fold}: job {job.job_id} died ({reason})")
                        failed.append((task, reason))
                    continue
                if result.error:
                    failures.append(f"{task.method} fold {task.fold}: {result.error}")
                    failed.append((task, result.error))
                else:
                    ctx.observer.on_fold_end(task.method, task.fold, result.outcome)
            if pending:
                time.sleep(_POLL_S)
    except KeyboardInterrupt:
        for job, task in pending.items():
            job.cancel(check=False)
            mark_stale_fold(ctx.client, ctx.exp_id, task.parent_id, task.fold, "cancelled (Ctrl-C)")
        raise
    if failures:
        for parent_id in {t.parent_id for t, _ in failed}:  # as inline: a parent whose fold failed is FAILED
            ctx.client.set_terminated(parent_id, "FAILED")
        raise TrainingError(
            f"{len(failures)} cell(s) failed: " + "; ".join(failures) + f" (logs in {opts.folder})"
        )
