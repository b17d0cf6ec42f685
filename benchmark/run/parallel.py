"""The planner side of ``benchmark run --executor local``: open every parent, hand the unfinished cells to
the worker processes (`benchmark.run.executors`), and close each parent once, when its last cell finished."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from mlflow.entities import Run

from benchmark.core.config import RunConfig
from benchmark.run.executors import CellTask, run_local
from benchmark.run.model_runs import RunContext, close_model, open_model
from benchmark.run.request import RunRequest
from benchmark.run.threads import cpu_budget

__all__ = ["run_cells_in_parallel"]

log = logging.getLogger(__name__)


def run_cells_in_parallel(
    request: RunRequest,
    ctx: RunContext,
    configs: Mapping[str, RunConfig],
    methods: Mapping[str, str],
) -> tuple[dict[str, str], dict[str, list[int]]]:
    """Run every unfinished (method, fold) cell on local worker processes.

    Args:
        request: the run request (``jobs``, ``devices``; workers rebuild the rest from it).
        ctx: the planner's context (store, data, folds, observer).
        configs: model → resolved config (tracking included).
        methods: model → recorded method name.

    Returns:
        ``(method → parent id, method → skipped folds)``, as `benchmark.run.model_runs.run_model`.
    """
    parents: dict[str, str] = {}
    skipped: dict[str, list[int]] = {}
    done: dict[str, dict[int, Run]] = {}
    elsewhere: dict[str, set[int]] = {}  # folds a live worker of another run is doing
    tasks: list[CellTask] = []
    for model, config in configs.items():  # every parent exists before any cell starts
        method = methods[model]
        parents[method], done[method], live = open_model(ctx, config, method, request.parent_tags)
        elsewhere[method] = live
        skipped[method] = sorted(f for f in ctx.folds if f in done[method] or f in live)
        ctx.observer.on_model_start(method, ctx.folds, skipped[method], config.train.epochs)
        tasks += [
            CellTask(request, model, method, f, parents[method], ctx.exp_id, ctx.digest, config.tracking)
            for f in ctx.folds
            if f not in done[method] and f not in live
        ]
    by_method = {methods[m]: (m, c) for m, c in configs.items()}
    open_methods = {m for m in by_method if any(t.method == m for t in tasks)}
    for method in set(by_method) - open_methods:  # nothing to run: close as inline does
        close_model(ctx, by_method[method][1], method, parents[method], done[method])
    jobs = min(request.jobs or cpu_budget(), max(len(tasks), 1))
    try:
        for task, run_id, outcome in run_local(tasks, jobs, request.devices):
            done[task.method][task.fold] = ctx.client.get_run(run_id)
            ctx.observer.on_fold_end(task.method, task.fold, outcome)
            if all(f in done[task.method] or f in elsewhere[task.method] for f in ctx.folds):
                close_model(
                    ctx, by_method[task.method][1], task.method, parents[task.method], done[task.method]
                )
                open_methods.discard(task.method)
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        for method in open_methods:
            ctx.client.set_terminated(parents[method], status)
        raise
    return parents, skipped
