"""The figure of `benchmark compare --plot` (the text renderers are in `benchmark.compare.render`).

Overall metrics: small multiples, one panel per metric, methods on the y axis sorted by the primary metric
(best on top), mean ± std over folds as a point with an error bar and every fold as a small dot. Colour
encodes the model family (Okabe–Ito, colour-blind safe); the method names are on the axis.

Macro specificity is left out of the overall panels: with K classes every one-vs-rest specificity is
computed on the (K − 1)/K majority of negatives, so the macro mean sits near 1 for every method and its
spread carries no ranking information (it stays in the table). Per-class specificity does tell which class
is over-predicted, so ``--per-class`` shows it next to per-class AUC and sensitivity, as heatmaps
method × class with annotated fold means.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from benchmark.compare.table import ComparisonTable
from benchmark.core.errors import BenchmarkError, ConfigError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "DPI",
    "OMITTED",
    "comparison_figure",
    "method_colours",
    "method_family",
    "new_figure",
    "plot_comparison",
]

DPI = 150
#: Overall metrics never drawn as panels: uninformative macro specificity, and sensitivity (= balanced acc.).
OMITTED = ("specificity", "sensitivity")
_PLOT_SUFFIXES = (".png", ".pdf", ".svg")
_LABELS = {
    "auc": "AUC (macro, one-vs-rest)",
    "balanced_accuracy": "balanced accuracy",
    "f1_macro": "F1 (macro)",
    "f1_weighted": "F1 (weighted)",
    "accuracy": "accuracy",
    "qwk": "quadratic weighted κ",
    "hierarchy_consistency": "hierarchy consistency",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "precision": "precision",
}
# Okabe & Ito (2008), as in `benchmark.metrics.figures` (not imported: that module loads pyplot). Fixed per
# family, so a family keeps its colour across datasets and levels; other families take the colours in turn.
_FAMILY_COLOURS = {
    "hmil": "#D55E00",
    "abmil": "#0072B2",
    "clam": "#009E73",
    "transmil": "#CC79A7",
    "dsmil": "#E69F00",
    "dtfd": "#56B4E9",
    "pooling": "#000000",
}
_POOLING = {"meanpool", "maxpool"}
_NCOLS = 3
_MAX_WIDTH = 13.0  # inches: ≤ 1950 px at DPI, legible when shown at half size
_PANEL_W, _ROW_H, _METHOD_H = 3.1, 1.15, 0.34  # inches


def method_family(method: str) -> str:
    """Model family that colours a method: ``clam-sb`` → ``clam``, ``meanpool`` → ``pooling``."""
    return "pooling" if method in _POOLING else method.split("-")[0]


def _family_colours(families: list[str]) -> dict[str, str]:
    spare = [f for f in families if f not in _FAMILY_COLOURS]
    palette = list(_FAMILY_COLOURS.values())
    return {f: _FAMILY_COLOURS.get(f) or palette[spare.index(f) % len(palette)] for f in families}


def method_colours(methods: list[str]) -> dict[str, str]:
    """Method → its family's colour (fixed for known families, so a method keeps its colour everywhere)."""
    hue = _family_colours(list(dict.fromkeys(method_family(m) for m in methods)))
    return {m: hue[method_family(m)] for m in methods}


def _label(metric: str) -> str:
    return _LABELS.get(metric, metric.replace("_", " "))


def _primary_order(cmp: ComparisonTable, table: pd.DataFrame) -> list[str]:
    """Methods by primary mean, best first (ties and methods without a value keep `cmp.methods` order)."""
    means = table[table["metric"] == cmp.primary].set_index("method")["mean"]
    rank = {m: i for i, m in enumerate(cmp.methods)}

    def key(m: str) -> tuple[float, int]:
        v = float(means.get(m, math.nan))
        return (-v if math.isfinite(v) else math.inf, rank[m])

    return sorted(cmp.methods, key=key)


def new_figure(width: float, height: float) -> Figure:
    # Imported here: seaborn/matplotlib cost ~1 s and only the plot needs them. A bare Figure with an Agg
    # canvas avoids pyplot's global state and any GUI backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _panel(ax: Axes, folds: pd.DataFrame, summary: pd.DataFrame, order: list[str], colours: dict) -> None:
    """One metric: fold dots, mean ± std per method (row 0 = best on the primary metric, drawn on top)."""
    rows = {m: i for i, m in enumerate(order)}
    rng = np.random.default_rng(0)  # fixed jitter: the same data give the same picture
    for method, g in folds.groupby("method", sort=False):
        y = rows[method] + rng.uniform(-0.12, 0.12, len(g))
        ax.scatter(g["value"], y, s=12, color=colours[method], alpha=0.45, lw=0, zorder=2)
    best = summary["mean"].max()
    for _, r in summary.iterrows():
        if not math.isfinite(r["mean"]):
            continue
        err = r["std"] if math.isfinite(r["std"]) else 0.0
        ax.errorbar(
            r["mean"], rows[r["method"]], xerr=err, fmt="o", ms=6.5, color=colours[r["method"]],
            mec="white", mew=0.8, elinewidth=1.6, capsize=3, zorder=3,
        )  # fmt: skip
        ax.annotate(
            f"{r['mean']:.3f}", (r["mean"], rows[r["method"]]), xytext=(0, 7), textcoords="offset points",
            ha="center", va="bottom", fontsize=8, color="0.25",
        )  # fmt: skip
    if math.isfinite(best):
        ax.axvline(best, color="0.6", lw=0.8, ls=":", zorder=1)
    lo, hi = ax.dataLim.intervalx  # room for the points and labels at the extremes (axvline pins nothing)
    pad = 0.08 * (hi - lo) if hi > lo else 0.05
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_yticks(range(len(order)), order)
    ax.set_ylim(len(order) - 0.5, -0.5)
    ax.grid(axis="x", lw=0.4, alpha=0.6)
    ax.grid(axis="y", lw=0.3, alpha=0.3)
    ax.tick_params(labelsize=9.5)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def comparison_figure(cmp: ComparisonTable) -> Figure:
    """The compare figure: per-class heatmaps when ``cmp.per_class`` is set, else the overall panels."""
    if cmp.per_class is not None:
        return _per_class_figure(cmp, cmp.per_class)
    data = cmp.folds.dropna(subset=["value"])
    metrics = [m for m in cmp.metrics if m not in OMITTED and m in set(data["metric"])]
    if not metrics:
        raise BenchmarkError(f"nothing to plot: no finite {cmp.level} metric values in {cmp.experiment!r}")
    metrics.sort(key=lambda m: m != cmp.primary)  # primary first, the rest in display order
    order = _primary_order(cmp, cmp.table)
    families = list(dict.fromkeys(method_family(m) for m in order))
    hue = _family_colours(families)
    colours = method_colours(order)
    ncols = min(_NCOLS, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    width = 1.4 + 0.075 * max(map(len, order)) + _PANEL_W * ncols
    fig = new_figure(width, 0.9 + nrows * (_ROW_H + _METHOD_H * len(order)))
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False)
    n_folds = cmp.folds.groupby("method")["fold"].nunique().max()
    for ax, metric in zip(axes.flat, metrics, strict=False):
        summary = cmp.table[cmp.table["metric"] == metric]
        _panel(ax, data[data["metric"] == metric], summary, order, colours)
        primary = " (primary)" if metric == cmp.primary else ""
        ax.set_title(_label(metric) + primary, fontsize=11, fontweight="bold" if primary else "normal")
    for ax in list(axes.flat)[len(metrics) :]:
        ax.set_visible(False)
    fig.suptitle(
        f"{cmp.experiment} · {cmp.level} level · mean ± std over {n_folds} folds (dots: folds)", fontsize=12
    )
    if len(families) > 1:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], marker="o", ls="", color=hue[f], label=f) for f in families]
        fig.legend(
            handles=handles, loc="outside lower center", ncols=len(families), frameon=False, fontsize=9.5
        )
    return fig


def _per_class_figure(cmp: ComparisonTable, per_class: pd.DataFrame) -> Figure:
    """One heatmap method × class per per-class metric (AUC first), annotated with the fold means."""
    import seaborn as sns

    data = per_class.dropna(subset=["mean"])
    if data.empty:
        raise BenchmarkError(f"nothing to plot: no finite per-class {cmp.level} values in {cmp.experiment!r}")
    metrics = sorted(dict.fromkeys(data["metric"]), key=lambda m: m != "auc")
    classes = list(dict.fromkeys(per_class["class"]))
    order = _primary_order(cmp, cmp.table)
    label_w = 0.3 + 0.075 * max(map(len, order))
    panel_w = 0.9 + 0.47 * len(classes)  # cells plus the colour bar
    ncols = max(1, min(len(metrics), int((_MAX_WIDTH - label_w) // panel_w)))
    nrows = math.ceil(len(metrics) / ncols)
    row_h = 0.9 + 0.09 * max(map(len, classes)) + 0.36 * len(order)
    fig = new_figure(min(_MAX_WIDTH, label_w + panel_w * ncols), 0.5 + row_h * nrows)
    axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    for ax, metric in zip(axes, metrics, strict=False):
        grid = data[data["metric"] == metric].pivot(index="method", columns="class", values="mean")
        grid = grid.reindex(index=order, columns=classes)
        sns.heatmap(
            grid, ax=ax, cmap="viridis", vmin=0.5 if metric == "auc" else 0.0, vmax=1.0, annot=True,
            fmt=".2f", annot_kws={"fontsize": 9}, linewidths=0.6, linecolor="white", square=False,
            cbar_kws={"shrink": 0.85, "pad": 0.02},
        )  # fmt: skip
        title = "AUC (one-vs-rest; colour floor 0.5)" if metric == "auc" else _label(metric)
        ax.set_title(title, fontsize=11)
        ax.set(xlabel="", ylabel="")
        ax.tick_params(axis="x", rotation=45, labelsize=9.5)
        for text in ax.get_xticklabels():
            text.set(ha="right", rotation_mode="anchor")
        ax.tick_params(axis="y", rotation=0, labelsize=9.5)
        if ax.get_subplotspec().colspan.start > 0:  # method names once per row
            ax.set_yticklabels([])
            ax.tick_params(axis="y", length=0)
    fig.suptitle(
        f"{cmp.experiment} · {cmp.level} level · per-class mean over folds · methods by {_label(cmp.primary)}",
        fontsize=12,
    )
    return fig


def plot_comparison(cmp: ComparisonTable, path: str | Path) -> Path:
    """Write `comparison_figure` to ``path`` (.png, .pdf or .svg) at `DPI`; see `compare.plot_comparison`."""
    path = Path(path)
    if path.suffix.lower() not in _PLOT_SUFFIXES:
        raise ConfigError(f"plot path {str(path)!r} must end in {', '.join(_PLOT_SUFFIXES)}")
    fig = comparison_figure(cmp)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path
