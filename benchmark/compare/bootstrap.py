"""Percentile bootstrap confidence interval of a level metric on pooled out-of-fold predictions.

The metric is always the one `benchmark.metrics.level.level_metrics` computes (the same code that produced
the logged fold metrics); this module only resamples the slides. Definition: ``docs/metrics.md``
("Bootstrap confidence interval").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmark.metrics.level import level_metrics

__all__ = ["DEFAULT_BOOTSTRAP", "DEFAULT_SEED", "BootstrapCI", "bootstrap_ci"]

DEFAULT_BOOTSTRAP = 1000  # resamples B
DEFAULT_SEED = 0
CONFIDENCE = 0.95


@dataclass(frozen=True)
class BootstrapCI:
    """A percentile bootstrap interval.

    Attributes:
        estimate: the metric on all pooled predictions (not the mean over folds).
        low, high: the 2.5 % and 97.5 % percentiles of the finite bootstrap replicates.
        n_slides: distinct slides resampled.
        n_boot: resamples drawn (B).
        n_finite: replicates where the metric was defined (the percentiles use these).
        seed: seed of the `numpy.random.Generator`.
    """

    estimate: float
    low: float
    high: float
    n_slides: int
    n_boot: int
    n_finite: int
    seed: int


def _metric(y: np.ndarray, probs: np.ndarray, names: Sequence[str], metric: str) -> float:
    # ordinal only adds "qwk"; asking for it just when needed keeps every other metric identical.
    overall = level_metrics(y, probs, names, ordinal=metric == "qwk").overall
    if metric not in overall:
        raise KeyError(metric)
    return float(overall[metric])


def _slide_rows(slides: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows grouped by slide: (row order sorted by slide, first position of each slide, rows per slide)."""
    codes = np.unique(slides, return_inverse=True)[1].ravel()
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return order, first, counts


def bootstrap_ci(
    y: np.ndarray,
    probs: np.ndarray,
    class_names: Sequence[str],
    metric: str,
    *,
    slides: np.ndarray | None = None,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
) -> BootstrapCI:
    """95 % percentile bootstrap CI of ``metric`` over slides, stratified by true class.

    Each resample draws, for every class c with n_c slides, n_c slides of class c with replacement (so
    every class keeps its size and stays present), and takes all prediction rows of the drawn slides (a
    slide tested in R repeats contributes its R rows together). The interval is the 2.5 and 97.5
    percentiles (`numpy.quantile`, linear interpolation) of the B replicates where the metric is defined.

    Args:
        y: (n,) int true labels at the level (0..K−1).
        probs: (n, K) probabilities at the level.
        class_names: K class names in label order.
        metric: a key of `LevelMetrics.overall` (e.g. "auc", "balanced_accuracy", "qwk").
        slides: (n,) slide ids; rows sharing an id are resampled together (default: one slide per row).
        n_boot: B, the number of resamples (≥ 1).
        seed: seed of the `numpy.random.Generator`; the same inputs and seed give the same interval.

    Returns:
        A `BootstrapCI`; low/high are NaN when no replicate is defined.

    Raises:
        KeyError: ``metric`` is not an overall level metric.
        ValueError: ``n_boot`` < 1, or the inputs are rejected by `level_metrics`.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be ≥ 1, got {n_boot}")
    y = np.asarray(y)
    probs = np.asarray(probs, dtype=np.float64)
    names = [str(c) for c in class_names]
    estimate = _metric(y, probs, names, metric)
    ids = np.arange(len(y)) if slides is None else np.asarray(slides)
    order, first, counts = _slide_rows(ids)
    slide_label = y[order[first]]  # a slide has one true class
    strata = [np.flatnonzero(slide_label == c) for c in np.unique(slide_label)]
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot)
    for b in range(n_boot):
        chosen = np.concatenate([s[rng.integers(0, len(s), len(s))] for s in strata])
        c = counts[chosen]
        # Row positions of every drawn slide: its first position plus 0..count-1.
        pos = np.repeat(first[chosen], c) + np.arange(c.sum()) - np.repeat(np.cumsum(c) - c, c)
        rows = order[pos]
        values[b] = _metric(y[rows], probs[rows], names, metric)
    finite = values[np.isfinite(values)]
    low, high = (
        (float(q) for q in np.quantile(finite, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2]))
        if finite.size
        else (math.nan, math.nan)
    )
    return BootstrapCI(estimate, low, high, len(counts), n_boot, int(finite.size), seed)
