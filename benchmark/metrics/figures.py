"""Per-fold figures logged to MLflow: confusion matrices (seaborn heatmaps) and one-vs-rest ROC curves.

The ROC legend shows each class's AUC as computed by `benchmark.metrics.level.level_metrics`, so the number
in the figure is the number logged as ``test.<level>.auc.<class>``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # headless: figures go to files/MLflow, never to a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from benchmark.metrics.level import LevelMetrics, level_metrics  # noqa: E402

__all__ = ["OKABE_ITO", "class_styles", "confusion_figure", "figure_title", "roc_figure"]

#: Okabe & Ito (2008) colour-blind-safe colours, ordered so that neighbours differ most (yellow last: it is
#: faint as a line on white).
OKABE_ITO: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow
)
_N_COLOURS = 7  # beyond this, line styles tell the classes apart (yellow is kept out of line plots)
_LINE_STYLES = ("-", "--", ":", "-.")


def figure_title(model: str, fold: int | str | None, level: str) -> str:
    """``"abmil · fold 2 · fine level"`` (the fold part is left out when unknown)."""
    parts = (
        [model]
        + ([f"fold {fold}"] if fold is not None and fold != "" else [])
        + [f"{level.replace('_', ' ')} level"]
    )
    return " · ".join(parts)


def class_styles(n: int) -> list[tuple[str, str]]:
    """(colour, line style) per class: 7 Okabe–Ito colours, then the same colours dashed, dotted, …"""
    return [
        (OKABE_ITO[k % _N_COLOURS], _LINE_STYLES[(k // _N_COLOURS) % len(_LINE_STYLES)]) for k in range(n)
    ]


def confusion_figure(confusion: np.ndarray, classes: Sequence[str], title: str) -> plt.Figure:
    """Row-normalised confusion matrix (rows = true class) with raw counts as annotations."""
    confusion = np.asarray(confusion, dtype=float)
    rows = confusion.sum(1, keepdims=True)
    share = np.divide(confusion, rows, out=np.zeros_like(confusion), where=rows > 0)
    size = 1.6 + 0.65 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1.4, size))
    sns.heatmap(
        share,
        annot=confusion.astype(int),
        fmt="d",
        cmap="Blues",
        vmin=0,
        vmax=1,
        square=True,
        linewidths=0.5,
        linecolor="white",
        xticklabels=classes,
        yticklabels=classes,
        cbar_kws={"label": "share of true class", "shrink": 0.8},
        annot_kws={"fontsize": 10},
        ax=ax,
    )
    ax.tick_params(axis="y", rotation=0)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig


def roc_figure(
    y_true: np.ndarray,
    probs: np.ndarray,
    classes: Sequence[str],
    title: str,
    *,
    metrics: LevelMetrics | None = None,
) -> plt.Figure:
    """One-vs-rest ROC curve per class, its AUC in the legend, and the chance diagonal.

    Args:
        y_true: (n,) int label indices.
        probs: (n, K) class probabilities (or scores) in label-index order.
        classes: K class names.
        title: figure title, e.g. `figure_title` ``("abmil", 2, "fine")``.
        metrics: the level's already computed metrics for these predictions; computed with
            `level_metrics` when None. The legend AUCs and the macro AUC are read from it, so they equal the
            logged values.

    Returns:
        The figure; a class absent from ``y_true`` (undefined AUC) has no curve and is listed as such.
    """
    y = np.asarray(y_true)
    if metrics is None:
        metrics = level_metrics(y, probs, classes)
    aucs = metrics.per_class["auc"].to_numpy()
    fig, ax = plt.subplots(figsize=(6.9, 4.8), layout="constrained")
    ax.plot([0, 1], [0, 1], ls="--", color="0.55", lw=0.9, label="chance (AUC 0.50)")
    handles: list[Line2D] = []
    for k, (name, (colour, style)) in enumerate(zip(classes, class_styles(len(classes)), strict=True)):
        positives = y == k
        if not np.isfinite(aucs[k]):
            handles.append(
                Line2D([], [], color=colour, ls=style, alpha=0.35, label=f"{name} (not in test set)")
            )
            continue
        fpr, tpr, _ = roc_curve(positives, probs[:, k])
        (line,) = ax.plot(
            fpr, tpr, color=colour, ls=style, lw=1.8, label=f"{name} (AUC {aucs[k]:.2f}, n={positives.sum()})"
        )
        handles.append(line)
    chance = ax.get_lines()[0]
    ax.legend(
        handles=[*handles, chance],
        title=f"class (AUC, n positives)\nmacro AUC {metrics.overall['auc']:.2f}",
        fontsize=9,
        title_fontsize=9.5,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        frameon=False,
        alignment="left",
    )
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), aspect="equal")
    ax.set_xlabel("1 − specificity (false-positive rate)")
    ax.set_ylabel("sensitivity (true-positive rate)")
    ax.set_title(f"{title}\none-vs-rest ROC, test set (n = {y.size})", fontsize=11)
    ax.grid(True, lw=0.4, alpha=0.5)
    return fig
