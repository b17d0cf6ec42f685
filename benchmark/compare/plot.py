"""The seaborn figure of `benchmark compare --plot` (the text renderers are in `benchmark.compare.render`)."""

from __future__ import annotations

from pathlib import Path

from benchmark.compare.table import ComparisonTable
from benchmark.core.errors import BenchmarkError, ConfigError

__all__ = ["plot_comparison"]

_PLOT_SUFFIXES = (".png", ".pdf", ".svg")


def plot_comparison(cmp: ComparisonTable, path: str | Path) -> Path:
    """Grouped bars (metric × method) of the fold means with ±1 std error bars; see `compare.plot_comparison`."""
    path = Path(path)
    if path.suffix.lower() not in _PLOT_SUFFIXES:
        raise ConfigError(f"plot path {str(path)!r} must end in {', '.join(_PLOT_SUFFIXES)}")
    data = cmp.folds.dropna(subset=["value"])
    if data.empty:
        raise BenchmarkError(f"nothing to plot: no finite {cmp.level} metric values in {cmp.experiment!r}")
    # Imported here: seaborn/matplotlib cost ~1 s and only the plot needs them. A bare Figure with an Agg
    # canvas avoids pyplot's global state and any GUI backend.
    import seaborn as sns
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    methods = [m for m in cmp.methods if m in set(data["method"])]
    metrics = [m for m in cmp.metrics if m in set(data["metric"])]
    fig = Figure(figsize=(1.2 + 0.45 * len(metrics) * max(len(methods), 2), 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    sns.barplot(
        data=data,
        x="metric",
        y="value",
        hue="method",
        order=metrics,
        hue_order=methods,
        errorbar="sd",
        capsize=0.15,
        err_kws={"linewidth": 1.0},
        ax=ax,
    )
    ax.set(xlabel="", ylabel="mean ± std over folds", title=f"{cmp.experiment} · {cmp.level}")
    ax.legend(title="method", loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    return path
