"""`benchmark compare --plot`: size bound, method order by the primary metric, per-class heatmap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmark.compare import ComparisonTable, plot_comparison
from benchmark.compare.plot import DPI, OMITTED, comparison_figure, method_family
from benchmark.compare.stats import summarise
from benchmark.core.errors import ConfigError

# The eleven registered models: the worst case for the figure's height and label width.
METHODS = (
    "abmil", "abmil-plain", "clam-sb", "clam-mb", "transmil", "dsmil", "dtfd", "meanpool", "maxpool", "hmil",
    "hmil-code",
)  # fmt: skip
METRICS = ("accuracy", "balanced_accuracy", "specificity", "auc", "f1_macro", "qwk")
CLASSES = ("ISUP_0", "ISUP_1", "ISUP_2", "ISUP_3", "ISUP_4", "ISUP_5")
MAX_PX = 2000


def _comparison(primary: str = "auc", per_class: bool = False) -> ComparisonTable:
    """Seeded fold values (5 folds) where the AUC ranking differs from the F1 ranking and from `METHODS`."""
    rng = np.random.default_rng(0)
    auc_rank = rng.permutation(len(METHODS))  # position of each method in the AUC ranking
    rows, pc_rows = [], []
    for i, method in enumerate(METHODS):
        for fold in range(5):
            for metric in METRICS:
                level = {"auc": 0.95 - 0.03 * auc_rank[i], "f1_macro": 0.4 + 0.02 * i}.get(metric, 0.6)
                value = level + 0.01 * rng.standard_normal()
                rows.append((method, f"cfg-{method}", fold, metric, value))
            for k, cls in enumerate(CLASSES):
                for metric in ("auc", "sensitivity"):
                    value = 0.9 - 0.03 * auc_rank[i] - 0.02 * k + 0.01 * rng.standard_normal()
                    pc_rows.append((method, f"cfg-{method}", fold, metric, cls, value))
    folds = pd.DataFrame(rows, columns=["method", "config_hash", "fold", "metric", "value"])
    pc_folds = pd.DataFrame(pc_rows, columns=["method", "config_hash", "fold", "metric", "class", "value"])
    # Deliberately *not* in primary order: the figure must sort the methods itself.
    order = list(METHODS)
    return ComparisonTable(
        experiment="panda-sim",
        level="fine",
        split_digest=None,
        primary=primary,
        metrics=METRICS,
        methods=tuple(order),
        table=summarise(folds, ["metric"], order),
        folds=folds,
        best={},
        per_class=summarise(pc_folds, ["metric", "class"], order) if per_class else None,
        per_class_folds=pc_folds if per_class else None,
    )


def _primary_order(cmp: ComparisonTable) -> list[str]:
    """Methods by fold mean of the primary metric, best first (computed here, independently of the plot)."""
    means = cmp.folds[cmp.folds["metric"] == cmp.primary].groupby("method")["value"].mean()
    return list(means.sort_values(ascending=False).index)


@pytest.mark.parametrize("primary", ["auc", "f1_macro"])
def test_methods_sorted_by_primary_metric(primary: str) -> None:
    cmp = _comparison(primary)
    fig = comparison_figure(cmp)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    ticks = [t.get_text() for t in panels[0].get_yticklabels()]
    expected = _primary_order(cmp)
    assert ticks == expected and ticks != list(METHODS)
    # Row 0 is drawn at the top: the best method is the highest on the axis.
    y0, y1 = panels[0].get_ylim()
    assert y0 > y1
    titles = [ax.get_title() for ax in panels]
    assert titles[0].endswith("(primary)")
    assert not any(name in t for t in titles for name in OMITTED)
    assert len(panels) == len(METRICS) - 1  # specificity dropped


def test_primary_orders_differ() -> None:
    """The two orders of the test above really are different, so it cannot pass by accident."""
    assert _primary_order(_comparison("auc")) != _primary_order(_comparison("f1_macro"))


def test_png_size_bound_and_legible_text(tmp_path: Path) -> None:
    cmp = _comparison()
    out = plot_comparison(cmp, tmp_path / "fig" / "cmp.png")
    width, height = Image.open(out).size
    assert 1000 <= width <= MAX_PX and height <= MAX_PX
    assert abs(width - comparison_figure(cmp).get_figwidth() * DPI) <= 1
    fig = comparison_figure(cmp)
    sizes = [t.get_fontsize() for ax in fig.axes for t in ax.get_yticklabels() + ax.get_xticklabels()]
    assert min(sizes) >= 8  # ≥ 8 pt at 150 dpi: ≥ 8 px tall when the PNG is shown at 50 %


def test_family_colours() -> None:
    assert method_family("clam-mb") == method_family("clam-sb") == "clam"
    assert method_family("meanpool") == method_family("maxpool") == "pooling"
    fig = comparison_figure(_comparison())
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert sorted(labels) == sorted({method_family(m) for m in METHODS})


def test_per_class_heatmap(tmp_path: Path) -> None:
    cmp = _comparison(per_class=True)
    out = plot_comparison(cmp, tmp_path / "pc.png")
    width, height = Image.open(out).size
    assert width <= MAX_PX and height <= MAX_PX
    fig = comparison_figure(cmp)
    heatmaps = [ax for ax in fig.axes if ax.get_visible() and ax.collections and ax.get_title()]
    assert [ax.get_title().split(" ")[0] for ax in heatmaps] == ["AUC", "sensitivity"]
    auc = heatmaps[0]
    rows = [t.get_text() for t in auc.get_yticklabels()]
    assert rows == _primary_order(cmp)
    assert [t.get_text() for t in auc.get_xticklabels()] == list(CLASSES)
    # Annotations are the fold means, row by row in the displayed method order.
    shown = [t.get_text() for t in auc.texts]
    pc = cmp.per_class
    means = pc[pc["metric"] == "auc"].pivot(index="method", columns="class", values="mean")
    assert shown == [f"{v:.2f}" for v in means.loc[rows, list(CLASSES)].to_numpy().ravel()]


def test_suffix_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\.png"):
        plot_comparison(_comparison(), tmp_path / "cmp.jpg")
