"""What `benchmark.compare.comparison.compare` returns: tidy per-method tables and what they were built from.

`ComparisonTable` holds the data only; `benchmark.compare.comparison.Comparison` adds the renderers, which
(`benchmark.compare.render`, `benchmark.compare.plot`) read this type and so do not depend on `compare`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from benchmark.compare.bootstrap import DEFAULT_BOOTSTRAP, DEFAULT_SEED, BootstrapCI

__all__ = ["ComparisonTable"]


@dataclass(frozen=True)
class ComparisonTable:
    """Result of `compare`: tidy tables (the renderers are on its subclass `Comparison`).

    Attributes:
        experiment: MLflow experiment name.
        level: label level compared ("fine", "coarse" or "coarse_head").
        split_digest: the one split digest shared by all selected runs (None when untagged).
        primary: metric whose best method (or ``reference``) anchors the headline paired tests and whose
            bootstrap CI is computed.
        metrics: overall metrics in display order (the primary metric is always among them).
        methods: methods in display order (best primary mean first).
        table: tidy summary, one row per (method, metric): method, config_hash, metric, mean, std
            (ddof=1), n (folds with a finite value), p_value (two-sided Wilcoxon signed-rank vs that
            metric's best method), p_nb (Nadeau–Bengio corrected resampled t vs the same method), n_pairs
            (folds paired in both tests), best, and on the primary metric's rows pooled, ci_low, ci_high
            (metric on the pooled out-of-fold predictions and its bootstrap 95 % CI; NaN without one).
        folds: per-fold values: method, config_hash, fold, metric, value.
        best: metric -> best method (highest mean; None when no method has a value).
        per_class: like ``table`` with an extra ``class`` column, when requested.
        per_class_folds: like ``folds`` with an extra ``class`` column, when requested.
        notes: human-readable remarks (e.g. superseded configs).
        reference: the method every p-value is computed against (None: the best method per metric).
        steps: method -> mean optimiser steps per fold (``compute.optimizer_steps``; NaN for runs that predate
            it), so an unequal training budget is visible next to the scores.
        intervals: method -> bootstrap CI of ``primary`` on its pooled out-of-fold predictions (methods
            without logged predictions are absent and named in ``notes``).
        ratio: n_test / n_train used by the corrected t-test; ``ratio_source`` says where it came from.
        n_boot, seed: bootstrap resamples B and the seed of its generator.
    """

    experiment: str
    level: str
    split_digest: str | None
    primary: str
    metrics: tuple[str, ...]
    methods: tuple[str, ...]
    table: pd.DataFrame
    folds: pd.DataFrame
    best: dict[str, str | None]
    per_class: pd.DataFrame | None = None
    per_class_folds: pd.DataFrame | None = None
    notes: tuple[str, ...] = field(default=())
    reference: str | None = None
    steps: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, BootstrapCI] = field(default_factory=dict)
    ratio: float = math.nan
    ratio_source: str = ""
    n_boot: int = DEFAULT_BOOTSTRAP
    seed: int = DEFAULT_SEED
