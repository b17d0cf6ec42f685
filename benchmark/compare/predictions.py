"""Pooled out-of-fold test predictions of each method (every fold run's ``predictions.csv``) and the bootstrap
CI of the primary metric on them, for `benchmark compare`.

``predictions.csv`` (written by `benchmark.tracking.fold_logging`) has one row per test slide: ``slide_id``,
``case_id``, ``fine_true``, ``p_fine.<class>`` per fine class, ``coarse_true`` and, for models with a coarse
head, ``p_coarse_head.<class>``. A method missing the file on any selected fold gets no interval (a note
says why): an interval on part of the slides would describe a different test set.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from benchmark.compare.bootstrap import BootstrapCI, bootstrap_ci
from benchmark.compare.runs import FoldRun

__all__ = ["PREDICTIONS", "LevelArrays", "level_arrays", "load_predictions", "primary_intervals"]

logger = logging.getLogger(__name__)

PREDICTIONS = "predictions.csv"
_LABELS = {"slide_id": str, "case_id": str, "fine_true": str, "coarse_true": str}

#: (y (n,) int labels, probs (n, K), class names (K), slide ids (n,)) at one level.
LevelArrays = tuple[np.ndarray, np.ndarray, list[str], np.ndarray]


def load_predictions(client: MlflowClient, run: FoldRun) -> pd.DataFrame | None:
    """The fold run's ``predictions.csv`` (labels read as strings), or None when the run has none."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run.run_id, PREDICTIONS, tmp)
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


def primary_intervals(
    tracking_uri: str,
    runs: Sequence[FoldRun],
    methods: Sequence[str],
    level: str,
    metric: str,
    *,
    n_boot: int,
    seed: int,
) -> tuple[dict[str, BootstrapCI], list[str]]:
    """Bootstrap CI of ``metric`` at ``level`` per method on its pooled fold predictions.

    Returns:
        ``(method -> BootstrapCI, notes)``; a method without an interval is absent and a note says why.
    """
    if n_boot < 1:
        return {}, []
    client = MlflowClient(tracking_uri=tracking_uri)
    out: dict[str, BootstrapCI] = {}
    notes: list[str] = []
    for method in methods:
        mine = sorted((r for r in runs if r.method == method), key=lambda r: r.fold)
        frames = {r.fold: load_predictions(client, r) for r in mine}
        lacking = [k for k, f in frames.items() if f is None]
        if lacking:
            notes.append(f"{method}: no CI, fold run(s) {lacking} logged no {PREDICTIONS} (older runs)")
            continue
        arrays = level_arrays(pd.concat(frames.values(), ignore_index=True), level)
        if isinstance(arrays, str):
            notes.append(f"{method}: no {level} CI, {arrays}")
            continue
        y, probs, names, slides = arrays
        try:
            out[method] = bootstrap_ci(y, probs, names, metric, slides=slides, n_boot=n_boot, seed=seed)
        except KeyError:
            return {}, [f"no CI: {metric!r} is not a per-level metric of the predictions"]
    logger.debug("bootstrap CIs of %s at %s: %s", metric, level, out)
    return out, notes
