"""MLflow tracking: the store layout (experiment per dataset, parent run per method config, child run per
fold) in `benchmark.tracking.store`, and what a fold's child run holds in `benchmark.tracking.fold_logging`.

Only the store is imported here: fold logging pulls in torch, matplotlib and the run layer.
"""

from benchmark.tracking.store import (
    DEFAULT_TRACKING_URI,
    BufferedCurves,
    aggregate_folds,
    check_split_digest,
    configure,
    ensure_experiment,
    find_parent,
    finished_folds,
    git_commit,
    log_metrics,
    log_params,
)

__all__ = [
    "DEFAULT_TRACKING_URI",
    "BufferedCurves",
    "aggregate_folds",
    "check_split_digest",
    "configure",
    "ensure_experiment",
    "find_parent",
    "finished_folds",
    "git_commit",
    "log_metrics",
    "log_params",
]
