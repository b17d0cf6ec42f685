"""Where the cells of a `benchmark run` execute: ``inline`` (this process, one cell after the other) or
``local`` (N worker processes on this machine, each pinned to a device or to its share of the CPUs).

A cell is one (method, fold): the smallest unit of work that is trained, tested and recorded on its own, as
one MLflow child run (`benchmark.run.model_runs.run_fold`). The process that plans the cells creates every
parent run before any cell starts and closes each parent once, when its last cell has finished. A worker
re-derives everything from the `RunRequest` (configs, data, folds), so a cell gives the same metrics in a
worker as inline with the same thread count.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from benchmark.core.config import RunConfig, TrackingConfig
from benchmark.core.errors import ConfigError, SplitError
from benchmark.core.hashing import config_hash
from benchmark.cv.files import fold_indices, splits_of
from benchmark.data import load_dataset
from benchmark.run.model_runs import RunContext, close_model, open_model, run_fold
from benchmark.run.observer import RunObserver
from benchmark.run.outcome import FoldOutcome
from benchmark.run.request import RunRequest
from benchmark.run.resolve import resolve_configs
from benchmark.run.threads import apply_thread_policy, cpu_budget
from benchmark.tracking.store import configure

__all__ = [
    "CellPlan",
    "CellTask",
    "cell_context",
    "init_worker",
    "plan_cells",
    "run_cell",
    "run_local",
    "worker_threads",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CellTask:
    """Everything a worker needs to run one cell; picklable (plain data, no clients or tensors).

    Attributes:
        request: the run's request (the worker resolves configs and loads data from it, as inline).
        model, method: registry name and recorded method name (differs for ablation labels).
        fold: the fold index.
        parent_id, exp_id, digest: the parent run, its experiment and the split digest the plan used.
        tracking: where the planner records (the resolved store and experiment).

    The worker resolves the config from ``request`` as the planner did (`RunConfig` holds a read-only
    mapping, which pickle cannot copy, and resolving is deterministic); its hash is checked against the
    parent's.
    """

    request: RunRequest
    model: str
    method: str
    fold: int
    parent_id: str
    exp_id: str
    digest: str
    tracking: TrackingConfig


@dataclass
class CellPlan:
    """The cells of a run before any starts: every parent opened, the unfinished cells as tasks.

    Attributes:
        parents: method → parent run id.
        skipped: method → folds not run here (finished, or running in another live worker).
        done: method → fold → FINISHED child run (grows as cells finish).
        elsewhere: method → folds a live worker of another run is doing.
        configs: method → resolved config.
        tasks: the cells to run.
    """

    parents: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, list[int]] = field(default_factory=dict)
    done: dict[str, dict[int, Run]] = field(default_factory=dict)
    elsewhere: dict[str, set[int]] = field(default_factory=dict)
    configs: dict[str, RunConfig] = field(default_factory=dict)
    tasks: list[CellTask] = field(default_factory=list)

    def complete(self, method: str, folds: Sequence[int]) -> bool:
        """Whether every fold of ``method`` is finished (or being done by another live worker)."""
        return all(f in self.done[method] or f in self.elsewhere[method] for f in folds)


def plan_cells(
    request: RunRequest, ctx: RunContext, configs: Mapping[str, RunConfig], methods: Mapping[str, str]
) -> CellPlan:
    """Open every parent before any cell starts and list the unfinished cells; a method with nothing left to
    run is closed here, as inline closes it."""
    plan = CellPlan()
    for model, config in configs.items():
        method = methods[model]
        plan.parents[method], plan.done[method], live = open_model(ctx, config, method, request.parent_tags)
        plan.elsewhere[method], plan.configs[method] = live, config
        plan.skipped[method] = sorted(f for f in ctx.folds if f in plan.done[method] or f in live)
        ctx.observer.on_model_start(method, ctx.folds, plan.skipped[method], config.train.epochs)
        todo = [f for f in ctx.folds if f not in plan.done[method] and f not in live]
        plan.tasks += [
            CellTask(request, model, method, f, plan.parents[method], ctx.exp_id, ctx.digest, config.tracking)
            for f in todo
        ]
        if not todo:
            close_model(ctx, config, method, plan.parents[method], plan.done[method])
    return plan


def worker_threads(jobs: int, devices: Sequence[str]) -> int:
    """Torch CPU threads per worker: its share of the CPUs (1 with GPUs: the device does the work)."""
    return 1 if devices else max(1, cpu_budget() // jobs)


_WORKER: dict[str, object] = {}  # per worker process: its device


def _init_worker(devices: multiprocessing.Queue | None, threads: int) -> None:
    init_worker(devices.get() if devices is not None else None, threads)


class _Keep(RunObserver):
    """Keeps the outcome a cell's `run_fold` reports (the worker has no progress display)."""

    outcome: FoldOutcome | None = None

    def on_fold_end(self, model: str, fold: int, outcome: FoldOutcome) -> None:
        self.outcome = outcome


def cell_context(task: CellTask, observer: RunObserver | None = None) -> tuple[RunContext, RunConfig]:
    """The context and config of one cell, rebuilt in this process from the request.

    Raises:
        SplitError: the split file changed since the plan.
        ConfigError: the config resolves to another hash than the parent's (code or defaults changed).
    """
    configure(task.tracking.uri)
    bags = load_dataset(task.request.data)
    # The planner made or checked the split file; a worker only reads it (never regenerates it).
    splits, split_path, digest = splits_of(bags.name, bags.table(), task.request.cv, new_splits=False)
    if digest != task.digest:
        raise SplitError(
            f"the split file {split_path} changed while the run was planned (digest {digest[:12]})."
        )
    config = dataclasses.replace(resolve_configs(task.request)[task.model], tracking=task.tracking)
    expected = MlflowClient().get_run(task.parent_id).data.tags.get("benchmark.config_hash")
    if config_hash(config) != expected:
        raise ConfigError(
            f"{task.method}: the worker resolved config {config_hash(config)}, the plan {expected}."
        )
    device = _WORKER.get("device")
    if device:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, device=str(device)))
    ctx = RunContext(
        MlflowClient(),
        task.exp_id,
        bags,
        splits,
        split_path,
        digest,
        [task.fold],
        {task.fold: fold_indices(splits, bags.table(), task.fold)},
        observer or RunObserver(),
        task.request.command,
        task.request.heatmaps,
    )
    return ctx, config


def run_cell(task: CellTask, context: tuple[RunContext, RunConfig] | None = None) -> tuple[str, FoldOutcome]:
    """Run one cell in this process; returns (child run id, its outcome without the state dict)."""
    keep = _Keep()
    ctx, config = context or cell_context(task)
    ctx = dataclasses.replace(ctx, observer=keep)
    run = run_fold(ctx, config, task.method, task.parent_id, task.fold)
    if keep.outcome is None:  # run_fold reports every finished fold; this would be a bug, not bad input
        raise RuntimeError(f"{task.method} fold {task.fold}: run_fold returned without an outcome")
    return run.info.run_id, dataclasses.replace(keep.outcome, state_dict={})


def init_worker(device: str | None, threads: int) -> None:
    """Pin this worker process to ``device`` (None: the config's) and ``threads`` torch threads."""
    _WORKER["device"] = device
    apply_thread_policy(threads)


def run_local(
    tasks: Sequence[CellTask], jobs: int, devices: Sequence[str] = ()
) -> Iterator[tuple[CellTask, str, FoldOutcome]]:
    """Run ``tasks`` on ``jobs`` worker processes (spawned: no inherited torch or MLflow state); yields each
    finished cell as it completes. The first failing cell cancels the cells not yet started and re-raises
    its error once the running ones have ended (each records its own child run's status)."""
    context = multiprocessing.get_context("spawn")
    queue = None
    if devices:
        queue = context.Queue()
        for i in range(jobs):
            queue.put(devices[i % len(devices)])
    threads = worker_threads(jobs, devices)
    log.info(
        "local executor: %d worker(s), %d thread(s) each%s",
        jobs,
        threads,
        f" on {list(devices)}" if devices else "",
    )
    with ProcessPoolExecutor(
        jobs, mp_context=context, initializer=_init_worker, initargs=(queue, threads)
    ) as pool:
        pending: dict[Future, CellTask] = {pool.submit(run_cell, t): t for t in tasks}
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    task = pending.pop(future)
                    run_id, outcome = future.result()
                    yield task, run_id, outcome
        except BaseException:
            for future in pending:
                future.cancel()
            raise
