"""Which metrics `benchmark compare` shows: the MLflow keys of a level, what the selected runs logged, and the
``--metrics``/``--primary`` choices checked against them.

Metric keys read from fold runs: ``test.<level>.<metric>`` (overall), ``test.<level>.<metric>.<class>``
(per class) and ``test.hierarchy_consistency``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from benchmark.compare.runs import FoldRun, Selection
from benchmark.core.errors import BenchmarkError, ConfigError

__all__ = [
    "DEFAULT_METRICS",
    "HIERARCHY",
    "PER_CLASS_DEFAULT",
    "logged_metrics",
    "metric_key",
    "natural",
    "resolve_metrics",
]

DEFAULT_METRICS = ("accuracy", "balanced_accuracy", "specificity", "auc", "f1_macro", "qwk")
PER_CLASS_DEFAULT = ("auc", "sensitivity", "specificity")
HIERARCHY = "hierarchy_consistency"  # logged once per fold, not per level


def metric_key(level: str, metric: str, cls: str | None = None) -> str:
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


def natural(name: str) -> list[object]:
    """Sort key so that ISUP_2 < ISUP_10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _unknown_metric(name: str, valid: set[str], level: str) -> ConfigError:
    close = difflib.get_close_matches(name, sorted(valid), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(
        f"--metrics: {name!r} is not logged at level {level!r}; available: {', '.join(sorted(valid))}.{hint}"
    )


def resolve_metrics(
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


def logged_metrics(sel: Selection, level: str, experiment: str) -> tuple[set[str], dict[str, set[str]]]:
    """Overall metric names (hierarchy consistency included when logged) and per-class metric -> class
    names that the selected runs logged at ``level``; raises when they logged nothing there."""
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
    if any(metric_key(level, HIERARCHY) in r.metrics for r in sel.runs):
        overall.add(HIERARCHY)
    return overall, classes
