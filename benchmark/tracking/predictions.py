"""Reading back a fold run's ``predictions.csv`` (written by `benchmark.tracking.fold_logging`) and turning
pooled predictions into per-level label and probability arrays.

``predictions.csv`` has one row per test slide: ``slide_id``, ``case_id``, ``fine_true``, ``p_fine.<class>``
per fine class, ``coarse_true`` and, for models with a coarse head, ``p_coarse_head.<class>``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

__all__ = ["PREDICTIONS", "LevelArrays", "level_arrays", "load_predictions"]

PREDICTIONS = "predictions.csv"
_LABELS = {"slide_id": str, "case_id": str, "fine_true": str, "coarse_true": str}

#: (y (n,) int labels, probs (n, K), class names (K), slide ids (n,)) at one level.
LevelArrays = tuple[np.ndarray, np.ndarray, list[str], np.ndarray]


def load_predictions(client: MlflowClient, run_id: str) -> pd.DataFrame | None:
    """The fold run's ``predictions.csv`` (labels read as strings), or None when the run has none."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, PREDICTIONS, tmp)
        except (MlflowException, OSError):
            return None
        return pd.read_csv(Path(path), dtype=_LABELS)


def _columns(frame: pd.DataFrame, prefix: str) -> list[str]:
    return [c for c in frame.columns if c.startswith(prefix)]


def _indices(labels: pd.Series, names: list[str]) -> np.ndarray | str:
    index = {n: i for i, n in enumerate(names)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        return f"true labels {unknown} have no probability column"
    return labels.map(index).to_numpy(dtype=np.int64)


def level_arrays(frame: pd.DataFrame, level: str) -> LevelArrays | str:
    """Labels and probabilities of the pooled predictions at ``level``, or the reason they are unavailable.

    ``fine`` uses ``p_fine.*``; ``coarse`` sums ``p_fine.*`` over each coarse class (the roll-up Mᵀp of
    `benchmark.metrics.evaluate`, with M read from the (fine_true, coarse_true) pairs, so every fine class
    must occur as a true label); ``coarse_head`` uses ``p_coarse_head.*``.
    """
    fine_cols = _columns(frame, "p_fine.")
    fine = [c.removeprefix("p_fine.") for c in fine_cols]
    slides = frame["slide_id"].to_numpy()
    if level == "fine":
        y = _indices(frame["fine_true"], fine)
        return y if isinstance(y, str) else (y, frame[fine_cols].to_numpy(np.float64), fine, slides)
    head_cols = _columns(frame, "p_coarse_head.")
    if level == "coarse_head":
        if not head_cols:
            return "no coarse head (p_coarse_head.* columns)"
        names = [c.removeprefix("p_coarse_head.") for c in head_cols]
        y = _indices(frame["coarse_true"], names)
        return y if isinstance(y, str) else (y, frame[head_cols].to_numpy(np.float64), names, slides)
    parent = frame.groupby("fine_true")["coarse_true"].unique()
    missing = [f for f in fine if f not in parent.index]
    if missing or any(len(v) != 1 for v in parent):
        return (
            f"the fine → coarse map cannot be read from the predictions (fine classes {missing} never true)"
        )
    # Coarse order: the coarse head's columns when present (the hierarchy's order), else first-child order.
    names = [c.removeprefix("p_coarse_head.") for c in head_cols] or list(
        dict.fromkeys(parent[f][0] for f in fine)
    )
    p_fine = frame[fine_cols].to_numpy(np.float64)
    probs = np.stack([p_fine[:, [parent[f][0] == c for f in fine]].sum(axis=1) for c in names], axis=1)
    y = _indices(frame["coarse_true"], names)
    return y if isinstance(y, str) else (y, probs, names, slides)
