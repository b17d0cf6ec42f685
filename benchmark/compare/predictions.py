"""Pooled out-of-fold test predictions of each method (every fold run's ``predictions.csv``) and the bootstrap
CI of the primary metric on them, for `benchmark compare`.

``predictions.csv`` (written by `benchmark.tracking.fold_logging`) has one row per test slide: ``slide_id``,
``case_id``, ``fine_true``, ``p_fine.<class>`` per fine class, ``coarse_true`` and, for models with a coarse
head, ``p_coarse_head.<class>``. A method missing the file on any selected fold gets no interval (a note
says why): an interval on part of the slides would describe a different test set.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd
from mlflow import MlflowClient

from benchmark.compare.bootstrap import BootstrapCI, bootstrap_ci
from benchmark.compare.runs import FoldRun
from benchmark.tracking.predictions import PREDICTIONS, level_arrays, load_predictions

__all__ = ["primary_intervals"]

logger = logging.getLogger(__name__)


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
        frames = {r.fold: load_predictions(client, r.run_id) for r in mine}
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
