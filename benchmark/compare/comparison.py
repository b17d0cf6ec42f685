"""`benchmark compare`: per-method mean ± std over folds from MLflow, best method, paired tests (Wilcoxon and
Nadeau–Bengio corrected t) and a bootstrap CI of the primary metric on the pooled out-of-fold predictions.

The metric keys read from fold runs are in `benchmark.compare.metric_names`; all metrics are higher-is-better.

Example:
    >>> cmp = compare("sqlite:///mlflow.db", "panda-sim", level="coarse")  # doctest: +SKIP
    >>> print(cmp.to_markdown())  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from benchmark.compare import plot, render, render_rich
from benchmark.compare.bootstrap import DEFAULT_SEED, BootstrapCI
from benchmark.compare.class_names import display_names
from benchmark.compare.metric_names import logged_metrics, metric_key, natural, resolve_metrics
from benchmark.compare.predictions import primary_intervals
from benchmark.compare.runs import FoldRun, Selection, load_fold_runs, select_runs
from benchmark.compare.stats import paired_wilcoxon, split_ratio, summarise
from benchmark.compare.table import ComparisonTable
from benchmark.core.errors import BenchmarkError, ConfigError

if TYPE_CHECKING:
    from rich.console import Group

__all__ = ["LEVELS", "Comparison", "compare", "paired_wilcoxon", "plot_comparison"]

logger = logging.getLogger(__name__)

LEVELS = ("fine", "coarse", "coarse_head")
STEPS = "compute.optimizer_steps"  # the training budget a fold actually spent


@dataclass(frozen=True)
class Comparison(ComparisonTable):
    """Result of `compare`: the tidy tables of `ComparisonTable` (see its attributes) plus renderers."""

    def to_json(self) -> str:
        """JSON document (NaN -> null); see `benchmark.compare.render.to_json` for the schema."""
        return render.to_json(self)

    def to_markdown(self) -> str:
        """GitHub-flavoured Markdown tables, best per metric in bold, NaN as "–"."""
        return render.to_markdown(self)

    def to_latex(self) -> str:
        """booktabs ``tabular`` with ``\\textbf{}`` on the best method per metric."""
        return render.to_latex(self)

    def to_csv(self) -> str:
        """The tidy ``table`` (and ``per_class`` rows when present) as CSV; NaN as an empty field."""
        return render.to_csv(self)

    def to_rich_table(self, width: int | None = None) -> Group:
        """The terminal table (best per metric in bold) and its footer, fitted to ``width`` columns
        (`benchmark.compare.render_rich`)."""
        return render_rich.to_rich_table(self, width)


def plot_comparison(comparison: Comparison, path: str | Path) -> Path:
    """Bar plot of the overall metrics per method, error bars = std over folds; format from the suffix.

    Args:
        comparison: result of `compare`.
        path: output file ending in .png, .pdf or .svg; parent folders are created.

    Returns:
        The written path.
    """
    return plot.plot_comparison(comparison, path)


def _fold_frame(runs: Sequence[FoldRun], columns: list[tuple[str, str | None]], level: str) -> pd.DataFrame:
    """Long per-fold frame; a metric a run did not log becomes NaN (shown as "–")."""
    rows = [
        {
            "method": r.method,
            "config_hash": r.config_hash,
            "fold": r.fold,
            "metric": metric,
            "class": cls,
            "value": float(r.metrics.get(metric_key(level, metric, cls), math.nan)),
        }
        for r in runs
        for metric, cls in columns
    ]
    return pd.DataFrame(rows, columns=["method", "config_hash", "fold", "metric", "class", "value"])


def compare(
    tracking_uri: str,
    experiment: str,
    *,
    level: str = "fine",
    metrics: Sequence[str] | None = None,
    per_class: bool = False,
    methods: Sequence[str] | None = None,
    split_digest: str | None = None,
    primary: str = "auc",
    reference: str | None = None,
    n_boot: int = 0,
    seed: int = DEFAULT_SEED,
) -> Comparison:
    """Compare methods on one experiment (dataset) from its finished MLflow fold runs.

    Each method contributes its newest config (by parent-run start time); all selected runs must share one
    split digest so that every method was scored on identical folds.

    Args:
        tracking_uri: MLflow tracking URI, e.g. ``sqlite:///mlflow.db``.
        experiment: experiment name (by convention the dataset name).
        level: "fine", "coarse" or "coarse_head".
        metrics: overall metrics to show (default: accuracy, balanced_accuracy, specificity, auc, f1_macro,
            qwk when logged, and hierarchy_consistency at level coarse_head). With ``per_class`` the names
            also choose the per-class metrics (default: auc, sensitivity, specificity).
        per_class: also build the methods × classes table.
        methods: restrict to these methods.
        split_digest: a split digest or a prefix of one; required when runs use several digests.
        primary: metric that defines the headline "p vs best" column, the corrected t-test and the CI.
        reference: test every method against this method instead of the best (e.g. the full model of
            an ablation ladder).
        n_boot: bootstrap resamples B for the CI of ``primary`` (0, the default: no CI; ``benchmark compare``
            asks for `DEFAULT_BOOTSTRAP`). Each resample recomputes the
            level metrics once (about 2 ms at 1,000 slides and 6 classes), so B = 1000 costs about 2 s per method.
        seed: seed of the bootstrap generator.

    Returns:
        A `Comparison`.

    Raises:
        BenchmarkError: missing store or experiment, no finished fold runs, mixed split digests, no metrics
            at ``level``, unknown method or metric names.
    """
    if level not in LEVELS:
        raise ConfigError(f"--level must be one of {', '.join(LEVELS)}, got {level!r}")
    all_runs, parent_start = load_fold_runs(tracking_uri, experiment)
    sel = select_runs(
        all_runs, parent_start, experiment=experiment, methods=methods, split_digest=split_digest
    )
    overall, classes = logged_metrics(sel, level, experiment)
    shown, pc_metrics = resolve_metrics(
        metrics, overall, classes, level=level, primary=primary, want_per_class=per_class
    )
    pc_columns = [(m, c) for m in pc_metrics for c in sorted(classes[m], key=natural)] if per_class else None
    cmp = _summarise_selection(
        sel, experiment, level, shown, pc_columns, primary=primary, reference=reference
    )
    if per_class:
        cmp = _with_class_names(
            cmp, display_names(tracking_uri, (r.parent_id for r in sel.runs if r.parent_id), level)
        )
    intervals, notes = primary_intervals(
        tracking_uri, sel.runs, cmp.methods, level, primary, n_boot=n_boot, seed=seed
    )
    return dataclasses.replace(
        cmp,
        table=_with_intervals(cmp.table, primary, intervals),
        intervals=intervals,
        n_boot=n_boot,
        seed=seed,
        notes=(*cmp.notes, *notes),
    )


def _with_class_names(cmp: Comparison, names: dict[str, str]) -> Comparison:
    """The per-class tables with class names (``ISUP 0``) instead of metric-key fragments (``ISUP_0``)."""
    if not names or cmp.per_class is None or cmp.per_class_folds is None:
        return cmp
    rename = lambda frame: frame.assign(**{"class": frame["class"].map(lambda k: names.get(k, k))})  # noqa: E731
    return dataclasses.replace(
        cmp, per_class=rename(cmp.per_class), per_class_folds=rename(cmp.per_class_folds)
    )


def _with_intervals(table: pd.DataFrame, primary: str, intervals: dict[str, BootstrapCI]) -> pd.DataFrame:
    """``table`` plus pooled, ci_low, ci_high on the primary metric's rows (NaN elsewhere)."""
    out = table.copy()
    on_primary = out["metric"] == primary
    for column, attr in (("pooled", "estimate"), ("ci_low", "low"), ("ci_high", "high")):
        out[column] = [
            getattr(intervals[m], attr) if p and m in intervals else math.nan
            for m, p in zip(out["method"], on_primary, strict=True)
        ]
    return out


def _mean_steps(runs: Sequence[FoldRun], order: Sequence[str]) -> dict[str, float]:
    """Method -> mean optimiser steps per fold (NaN when no run logged them)."""
    return {
        m: float(np.mean(v))
        if (v := [r.metrics[STEPS] for r in runs if r.method == m and STEPS in r.metrics])
        else math.nan
        for m in order
    }


def _summarise_selection(
    sel: Selection,
    experiment: str,
    level: str,
    shown: list[str],
    pc_columns: list[tuple[str, str]] | None,
    *,
    primary: str,
    reference: str | None,
) -> Comparison:
    """The `Comparison` of the selected runs: ``shown`` metrics overall, ``pc_columns`` (metric, class) pairs
    per class (None: no per-class table)."""
    folds = _fold_frame(sel.runs, [(m, None) for m in shown], level)
    primary_mean = folds[folds["metric"] == primary].groupby("method")["value"].mean()
    # Methods that logged nothing at this level (no coarse head at level coarse_head) would be all-dash rows.
    logged = set(folds.loc[folds["value"].notna(), "method"])
    absent = sorted(m for m in sel.configs if m not in logged)
    notes = list(sel.notes)
    if absent:
        notes.append(f"not shown (no {level} metrics logged, e.g. no coarse head): {', '.join(absent)}")
    # Leaderboard order: best primary mean first, methods without the primary metric last.
    order = sorted(
        (m for m in sel.configs if m in logged),
        key=lambda m: (-np.nan_to_num(primary_mean.get(m, np.nan), nan=-np.inf), m),
    )
    if reference is not None and reference not in sel.configs:
        raise BenchmarkError(
            f"reference method {reference!r} has no finished runs; choose one of {sorted(sel.configs)}"
        )
    ratio, ratio_source = split_ratio([r.params for r in sel.runs], len({r.fold for r in sel.runs}))
    table = summarise(folds, ["metric"], order, reference, ratio)
    # `table` rows follow `order`, so ties go to the method ranked higher on the primary metric.
    best = {
        m: (table.loc[(table["metric"] == m) & table["best"], "method"].tolist() or [None])[0] for m in shown
    }

    logger.debug("compare %s level=%s: methods=%s metrics=%s", experiment, level, order, shown)
    pc_table = pc_folds = None
    if pc_columns is not None:
        pc_folds = _fold_frame(sel.runs, pc_columns, level)
        pc_table = summarise(pc_folds, ["metric", "class"], order, reference, ratio)
    return Comparison(
        experiment=experiment,
        steps=_mean_steps(sel.runs, order),
        level=level,
        split_digest=sel.split_digest,
        primary=primary,
        reference=reference,
        metrics=tuple(shown),
        methods=tuple(order),
        table=table,
        folds=folds.drop(columns="class"),
        best=best,
        per_class=pc_table,
        per_class_folds=pc_folds,
        notes=tuple(notes),
        ratio=ratio,
        ratio_source=ratio_source,
    )
