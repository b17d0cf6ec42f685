"""`benchmark compare`: per-method mean ± std over folds from MLflow, best method, paired Wilcoxon tests.

Metric keys read from fold runs: ``test.<level>.<metric>`` (overall), ``test.<level>.<metric>.<class>``
(per class) and ``test.hierarchy_consistency``. All metrics are higher-is-better.

Example:
    >>> cmp = compare("sqlite:///mlflow.db", "panda-sim", level="coarse")  # doctest: +SKIP
    >>> print(cmp.to_markdown())  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from benchmark.compare import plot as _compare_plot
from benchmark.compare import render
from benchmark.compare.runs import FoldRun, load_fold_runs, select_runs
from benchmark.compare.stats import paired_wilcoxon, summarise
from benchmark.core.errors import BenchmarkError, ConfigError

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["LEVELS", "Comparison", "compare", "paired_wilcoxon", "plot_comparison"]

logger = logging.getLogger(__name__)

LEVELS = ("fine", "coarse", "coarse_head")
DEFAULT_METRICS = ("accuracy", "balanced_accuracy", "specificity", "auc", "f1_macro", "qwk")
PER_CLASS_DEFAULT = ("auc", "sensitivity", "specificity")
HIERARCHY = "hierarchy_consistency"  # logged once per fold, not per level
STEPS = "compute.optimizer_steps"  # the training budget a fold actually spent


@dataclass(frozen=True)
class Comparison:
    """Result of `compare`: tidy tables plus renderers.

    Attributes:
        experiment: MLflow experiment name.
        level: label level compared ("fine", "coarse" or "coarse_head").
        split_digest: the one split digest shared by all selected runs (None when untagged).
        primary: metric whose best method anchors the headline Wilcoxon p-value.
        metrics: overall metrics in display order (the primary metric is always among them).
        methods: methods in display order (best primary mean first).
        table: tidy summary, one row per (method, metric): method, config_hash, metric, mean, std
            (ddof=1), n (folds with a finite value), p_value (Wilcoxon vs that metric's best method), best.
        folds: per-fold values: method, config_hash, fold, metric, value.
        best: metric -> best method (highest mean; None when no method has a value).
        per_class: like ``table`` with an extra ``class`` column, when requested.
        per_class_folds: like ``folds`` with an extra ``class`` column, when requested.
        notes: human-readable remarks (e.g. superseded configs).
        reference: the method every p-value is computed against (None: the best method per metric).
        steps: method -> mean optimiser steps per fold (``compute.optimizer_steps``; NaN for runs that predate
            it), so an unequal training budget is visible next to the scores.
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

    def to_rich_table(self) -> Table:
        """A `rich.table.Table` for the terminal, best per metric in bold."""
        return render.to_rich_table(self)


def plot_comparison(comparison: Comparison, path: str | Path) -> Path:
    """Bar plot of the overall metrics per method, error bars = std over folds; format from the suffix.

    Args:
        comparison: result of `compare`.
        path: output file ending in .png, .pdf or .svg; parent folders are created.

    Returns:
        The written path.
    """
    return _compare_plot.plot_comparison(comparison, path)


def _key(level: str, metric: str, cls: str | None = None) -> str:
    if metric == HIERARCHY:
        return f"test.{HIERARCHY}"
    return f"test.{level}.{metric}" + (f".{cls}" if cls else "")


def _available(runs: Sequence[FoldRun], level: str) -> tuple[set[str], dict[str, set[str]]]:
    """Overall metric names and per-class metric -> class names logged at ``level`` by any run."""
    prefix = f"test.{level}."
    overall: set[str] = set()
    per_class: dict[str, set[str]] = {}
    for r in runs:
        for key in r.metrics:
            if not key.startswith(prefix):
                continue
            name, _, cls = key[len(prefix) :].partition(".")
            if cls:
                per_class.setdefault(name, set()).add(cls)
            else:
                overall.add(name)
    return overall, per_class


def _natural(name: str) -> list[object]:
    """Sort key so that ISUP_2 < ISUP_10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _unknown_metric(name: str, valid: set[str], level: str) -> ConfigError:
    close = difflib.get_close_matches(name, sorted(valid), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(
        f"--metrics: {name!r} is not logged at level {level!r}; available: {', '.join(sorted(valid))}.{hint}"
    )


def _resolve_metrics(
    requested: Sequence[str] | None,
    overall: set[str],
    per_class: dict[str, set[str]],
    *,
    level: str,
    primary: str,
    want_per_class: bool,
) -> tuple[list[str], list[str]]:
    """Overall and per-class metric lists to show; the primary metric is always part of the overall list."""
    if requested:
        valid = overall | (set(per_class) if want_per_class else set())
        for name in requested:
            if name not in valid:
                raise _unknown_metric(name, valid, level)
        shown = [m for m in requested if m in overall]
        pc = [m for m in requested if m in per_class] if want_per_class else []
    else:
        shown = [m for m in DEFAULT_METRICS if m in overall]
        if level == "coarse_head" and HIERARCHY in overall:
            shown.append(HIERARCHY)
        pc = [m for m in PER_CLASS_DEFAULT if m in per_class] if want_per_class else []
    if primary not in overall:
        raise ConfigError(
            f"--primary: {primary!r} is not logged at level {level!r}; choose one of {', '.join(sorted(overall))}"
        )
    if primary not in shown:
        shown.append(primary)
    if want_per_class and not pc:
        raise BenchmarkError(
            f"no per-class metrics (test.{level}.<metric>.<class>) among the selected runs; "
            f"per-class metrics found: {', '.join(sorted(per_class)) or 'none'}"
        )
    return shown, pc


def _fold_frame(runs: Sequence[FoldRun], columns: list[tuple[str, str | None]], level: str) -> pd.DataFrame:
    """Long per-fold frame; a metric a run did not log becomes NaN (shown as "–")."""
    rows = [
        {
            "method": r.method,
            "config_hash": r.config_hash,
            "fold": r.fold,
            "metric": metric,
            "class": cls,
            "value": float(r.metrics.get(_key(level, metric, cls), math.nan)),
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
        primary: metric that defines the headline "p vs best" column.
        reference: test every method against this method instead of the best (e.g. the full model of
            an ablation ladder).

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
    overall, classes = _available(sel.runs, level)
    if not overall and not classes:
        levels = sorted(
            {
                k.split(".")[1]
                for r in sel.runs
                for k in r.metrics
                if k.startswith("test.") and k.count(".") >= 2
            }
        )
        raise BenchmarkError(
            f"no test.{level}.* metrics in experiment {experiment!r} for methods "
            f"{', '.join(sorted(sel.configs))}; levels logged: {', '.join(levels) or 'none'} "
            "(coarse_head exists only for models with a coarse head); pick another --level"
        )
    if any(_key(level, HIERARCHY) in r.metrics for r in sel.runs):
        overall.add(HIERARCHY)
    shown, pc_metrics = _resolve_metrics(
        metrics, overall, classes, level=level, primary=primary, want_per_class=per_class
    )

    folds = _fold_frame(sel.runs, [(m, None) for m in shown], level)
    primary_mean = folds[folds["metric"] == primary].groupby("method")["value"].mean()
    # Leaderboard order: best primary mean first, methods without the primary metric last.
    order = sorted(sel.configs, key=lambda m: (-np.nan_to_num(primary_mean.get(m, np.nan), nan=-np.inf), m))
    if reference is not None and reference not in sel.configs:
        raise BenchmarkError(
            f"reference method {reference!r} has no finished runs; choose one of {sorted(sel.configs)}"
        )
    table = summarise(folds, ["metric"], order, reference)
    # `table` rows follow `order`, so ties go to the method ranked higher on the primary metric.
    best = {
        m: (table.loc[(table["metric"] == m) & table["best"], "method"].tolist() or [None])[0] for m in shown
    }

    logger.debug("compare %s level=%s: methods=%s metrics=%s", experiment, level, order, shown)
    pc_table = pc_folds = None
    if per_class:
        cols = [(m, c) for m in pc_metrics for c in sorted(classes[m], key=_natural)]
        pc_folds = _fold_frame(sel.runs, cols, level)
        pc_table = summarise(pc_folds, ["metric", "class"], order, reference)
    steps = {
        m: float(np.mean(v))
        if (v := [r.metrics[STEPS] for r in sel.runs if r.method == m and STEPS in r.metrics])
        else math.nan
        for m in order
    }
    return Comparison(
        experiment=experiment,
        steps=steps,
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
        notes=tuple(sel.notes),
    )
