"""Per-fold figures logged to MLflow: confusion matrices (seaborn heatmaps) and one-vs-rest ROC curves."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # headless: figures go to files/MLflow, never to a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

__all__ = ["confusion_figure", "roc_figure"]


def confusion_figure(confusion: np.ndarray, classes: Sequence[str], title: str) -> plt.Figure:
    """Row-normalised confusion matrix (rows = true class) with raw counts as annotations."""
    confusion = np.asarray(confusion, dtype=float)
    rows = confusion.sum(1, keepdims=True)
    share = np.divide(confusion, rows, out=np.zeros_like(confusion), where=rows > 0)
    size = 1.2 + 0.7 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    sns.heatmap(
        share,
        annot=confusion.astype(int),
        fmt="d",
        cmap="Blues",
        vmin=0,
        vmax=1,
        xticklabels=classes,
        yticklabels=classes,
        cbar_kws={"label": "share of true class"},
        ax=ax,
    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def roc_figure(y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str], title: str) -> plt.Figure:
    """One-vs-rest ROC curve per class (classes absent from ``y_true`` are skipped)."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    palette = sns.color_palette("colorblind", len(classes))
    for k, name in enumerate(classes):
        positives = y_true == k
        if positives.all() or not positives.any():
            continue
        fpr, tpr, _ = roc_curve(positives, probs[:, k])
        ax.plot(fpr, tpr, color=palette[k], label=name)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    ax.set_xlabel("1 − specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
