"""The description (``mlflow.note.content``) the MLflow UI shows on a parent run: what it is, its mean ± std
table over the finished folds, and the command that produced it."""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["parent_description"]

_METRICS = (
    ("auc", "AUC (macro OvR)"),
    ("balanced_accuracy", "balanced accuracy"),
    ("accuracy", "accuracy"),
    ("f1_macro", "F1 macro"),
    ("qwk", "quadratic κ"),
)
_LEVELS = ("fine", "coarse", "coarse_head")


def _cell(stats: Mapping[str, object] | None) -> str:
    if not stats or stats.get("mean") is None or not math.isfinite(float(stats["mean"])):
        return "–"
    std = stats.get("std")
    spread = f" ± {float(std):.3f}" if std is not None and math.isfinite(float(std)) else ""
    return f"{float(stats['mean']):.3f}{spread}"


def parent_description(
    method: str,
    dataset: str,
    aggregated: Mapping[str, Mapping[str, object]],
    *,
    n_finished: int,
    n_folds: int,
    split_digest: str,
    config_hash: str,
    command: str | None,
) -> str:
    """Markdown: the test AUC per level, what was run, the test metrics (mean ± std over folds) per label level, the command.

    ``aggregated`` maps ``test.<level>.<metric>`` to ``{"mean", "std", "n"}`` (`aggregate_folds`); levels
    without any value (``coarse_head`` for a model with no coarse head) are left out.
    """
    levels = [lv for lv in _LEVELS if any(f"test.{lv}.{m}" in aggregated for m, _ in _METRICS)]
    headline = " · ".join(
        f"{lv.replace('_', ' ')} {_cell(aggregated.get(f'test.{lv}.auc'))}"
        for lv in levels
        if f"test.{lv}.auc" in aggregated
    )
    lines = [
        # MLflow shows a long description folded to its first lines: the headline numbers come first.
        f"**{method}** test AUC (mean ± std over folds): {headline or '–'}",
        "",
        f"`{dataset}`: {n_finished}/{n_folds} folds finished · split `{split_digest[:12]}` · "
        f"config `{config_hash[:12]}`",
        "",
        "| test metric | " + " | ".join(lv.replace("_", " ") for lv in levels) + " |",
        "|---" * (len(levels) + 1) + "|",
    ]
    for key, label in _METRICS:
        if any(f"test.{lv}.{key}" in aggregated for lv in levels):
            lines.append(
                f"| {label} | "
                + " | ".join(_cell(aggregated.get(f"test.{lv}.{key}")) for lv in levels)
                + " |"
            )
    lines += ["", "mean ± std over folds; per-fold runs are this run's children."]
    if command:
        lines += ["", f"Command: `{command}`"]
    return "\n".join(lines)
