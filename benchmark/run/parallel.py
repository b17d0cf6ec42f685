"""The planner side of ``benchmark run --executor local``: open every parent, hand the unfinished cells to
the worker processes (`benchmark.run.executors`), and close each parent once, when its last cell finished."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from benchmark.core.config import RunConfig
from benchmark.run.executors import plan_cells, run_local
from benchmark.run.model_runs import RunContext, close_model
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
    plan = plan_cells(request, ctx, configs, methods)
    running = {t.method for t in plan.tasks}  # parents still to close
    jobs = min(request.jobs or cpu_budget(), max(len(plan.tasks), 1))
    try:
        for task, run_id, outcome in run_local(plan.tasks, jobs, request.devices):
            plan.done[task.method][task.fold] = ctx.client.get_run(run_id)
            ctx.observer.on_fold_end(task.method, task.fold, outcome)
            if plan.complete(task.method, ctx.folds):
                parent = plan.parents[task.method]
                close_model(ctx, plan.configs[task.method], task.method, parent, plan.done[task.method])
                running.discard(task.method)
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        for method in running:
            ctx.client.set_terminated(plan.parents[method], status)
        raise
    return plan.parents, plan.skipped
