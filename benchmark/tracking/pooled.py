"""What a parent run shows of its folds together: confusion matrices, one-vs-rest ROC curves and a per-class
table of the pooled out-of-fold test predictions (every finished fold's ``predictions.csv``).

Pooling is not averaging: the AUC of the pooled predictions ranks slides of different folds against each
other, so it can differ from ``test.<level>.auc.mean`` (the mean of the per-fold AUCs, the number the
comparison tables use). Both are defined in ``docs/metrics.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import matplotlib.pyplot as plt
import pandas as pd
from mlflow.tracking import MlflowClient

from benchmark.metrics.figures import confusion_figure, figure_title, roc_figure
from benchmark.metrics.level import level_metrics
from benchmark.tracking.predictions import level_arrays, load_predictions

__all__ = ["LEVELS", "log_pooled", "pooled_per_class"]

log = logging.getLogger(__name__)

LEVELS = ("fine", "coarse", "coarse_head")
_DECIMALS = 4  # the per-class table is for reading; the exact values are in each fold run's per_class.json


def _save(client: MlflowClient, run_id: str, fig: plt.Figure, name: str) -> None:
    try:
        client.log_figure(run_id, fig, name, save_kwargs={"dpi": 150})
    finally:
        plt.close(fig)


def pooled_per_class(pooled: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, object]]:
    """Per-class metrics of pooled predictions at every level they allow.

    Args:
        pooled: concatenated ``predictions.csv`` frames (one row per test slide and fold).

    Returns:
        ``(table, metrics)``: the tidy table (``level, class, support, accuracy, …, auc``, rounded to 4
        decimals) and level → (`LevelMetrics`, y, probs, class names) for the figures. A level the
        predictions cannot give (no coarse head) is absent.
    """
    frames, out = [], {}
    for level in LEVELS:
        arrays = level_arrays(pooled, level)
        if isinstance(arrays, str):
            log.debug("no pooled %s metrics: %s", level, arrays)
            continue
        y, probs, names, _ = arrays
        metrics = level_metrics(y, probs, names)
        out[level] = (metrics, y, probs, names)
        frame = metrics.per_class.reset_index(names="class")
        frame.insert(0, "level", level)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return table.round(_DECIMALS), out


def log_pooled(
    client: MlflowClient, parent_id: str, method: str, fold_runs: Mapping[int, str], *, n_folds: int
) -> bool:
    """Log ``per_class_pooled.json`` and ``figures/pooled_{confusion,roc}_<level>.png`` on the parent.

    Args:
        client: the MLflow client.
        parent_id: the parent run.
        method: the method name (figure titles).
        fold_runs: fold index → FINISHED child run id.
        n_folds: folds of the protocol (titles say "k of n folds" while some are missing).

    Returns:
        False (and nothing logged) when a fold run has no ``predictions.csv`` (runs older than the file).
    """
    frames = {fold: load_predictions(client, run_id) for fold, run_id in sorted(fold_runs.items())}
    missing = [fold for fold, frame in frames.items() if frame is None]
    if not frames or missing:
        log.info("%s: no pooled figures, fold run(s) %s have no predictions.csv", method, missing)
        return False
    pooled = pd.concat(frames.values(), ignore_index=True)
    table, levels = pooled_per_class(pooled)
    client.log_table(parent_id, table, "per_class_pooled.json")
    k = len(frames)
    scope = (
        f"pooled out-of-fold, {k} folds" if k == n_folds else f"pooled out-of-fold, {k} of {n_folds} folds"
    )
    for level, (metrics, y, probs, names) in levels.items():
        title = f"{figure_title(method, None, level)} · {scope}"
        fig = confusion_figure(metrics.confusion, names, f"{title}\ntest predictions (n = {len(y)})")
        _save(client, parent_id, fig, f"figures/pooled_confusion_{level}.png")
        _save(
            client,
            parent_id,
            roc_figure(y, probs, names, title, metrics=metrics),
            f"figures/pooled_roc_{level}.png",
        )
    return True
