"""Where the cells of an experiment stand, read from MLflow alone (so it works for runs started anywhere,
e.g. a SLURM array submitted without ``--wait``): per parent run, which folds are finished, running, failed,
killed or still pending.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlflow.tracking import MlflowClient

from benchmark.core.errors import BenchmarkError

__all__ = ["STATES", "MethodStatus", "experiment_status"]

#: A fold's state: its best child wins in this order (a FINISHED child makes the fold finished, even when an
#: earlier attempt FAILED); a fold without a child is pending.
STATES = ("finished", "running", "failed", "killed", "pending")
_RANK = {
    "FINISHED": "finished",
    "RUNNING": "running",
    "SCHEDULED": "running",
    "FAILED": "failed",
    "KILLED": "killed",
}


@dataclass(frozen=True)
class MethodStatus:
    """One parent run's cells.

    Attributes:
        method, config_hash, parent_id: what the parent is.
        parent_status: the parent's MLflow status (FINISHED only once every fold is).
        n_folds: folds of its protocol.
        folds: state → sorted fold indices (every state of `STATES` is a key).
    """

    method: str
    config_hash: str
    parent_id: str
    parent_status: str
    n_folds: int
    folds: dict[str, list[int]] = field(default_factory=dict)


def experiment_status(client: MlflowClient, experiment: str) -> list[MethodStatus]:
    """Every parent run of ``experiment`` (newest first per method) with the state of each of its folds.

    Raises:
        BenchmarkError: the experiment does not exist.
    """
    exp = client.get_experiment_by_name(experiment)
    if exp is None or exp.lifecycle_stage != "active":
        names = sorted(e.name for e in client.search_experiments())
        raise BenchmarkError(
            f"MLflow experiment {experiment!r} not found; existing: {', '.join(names) or 'none'}. "
            "Pass --dataset/--experiment as given to `benchmark run`."
        )
    runs = client.search_runs(
        [exp.experiment_id], "", order_by=["attributes.start_time DESC"], max_results=50000
    )
    children: dict[str, list] = {}
    for run in runs:
        if run.data.tags.get("benchmark.role") == "fold":
            children.setdefault(run.data.tags.get("mlflow.parentRunId", ""), []).append(run)
    out = []
    for parent in (r for r in runs if r.data.tags.get("benchmark.role") == "parent"):
        tags = parent.data.tags
        n_folds = int(tags.get("benchmark.n_folds", "0") or 0)
        state: dict[int, str] = {}
        for child in children.get(parent.info.run_id, []):
            fold = int(child.data.tags.get("benchmark.fold", -1))
            new = _RANK.get(child.info.status, "failed")
            if fold not in state or STATES.index(new) < STATES.index(state[fold]):
                state[fold] = new
        folds = {s: sorted(f for f, v in state.items() if v == s) for s in STATES}
        folds["pending"] = [f for f in range(n_folds) if f not in state]
        out.append(
            MethodStatus(
                tags.get("benchmark.method", "?"),
                tags.get("benchmark.config_hash", ""),
                parent.info.run_id,
                parent.info.status,
                n_folds,
                folds,
            )
        )
    return sorted(out, key=lambda s: s.method)  # stable: newest parent first within a method
