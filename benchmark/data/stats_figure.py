"""The PCA-spectrum figure of `benchmark data stats`: how concentrated a dataset's feature variance is."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from benchmark.core.errors import ConfigError
from benchmark.data.stats import FeatureStats

__all__ = ["spectrum_figure"]

_SUFFIXES = (".png", ".pdf", ".svg")


def spectrum_figure(stats: Mapping[str, FeatureStats], path: str | Path) -> Path:
    """Scree plot (share of variance per PC, log–log) and cumulative share, one line per dataset.

    Args:
        stats: dataset label → its `FeatureStats` (several datasets share the axes for comparison).
        path: output file (.png, .pdf or .svg); parent folders are created.
    """
    path = Path(path)
    if path.suffix.lower() not in _SUFFIXES:
        raise ConfigError(f"--plot {str(path)!r} must end in {', '.join(_SUFFIXES)}")
    # Imported here: seaborn/matplotlib cost about a second and only the figure needs them.
    import seaborn as sns
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle("PCA spectrum of the instance features (`benchmark data stats`)", fontsize=11)
    scree, cumulative = fig.subplots(1, 2)
    palette = sns.color_palette("colorblind", len(stats))
    for colour, (label, s) in zip(palette, stats.items(), strict=True):
        lam = np.asarray(s.eigenvalues)
        share = lam / s.total_variance if s.total_variance > 0 else lam
        pcs = np.arange(1, len(lam) + 1)
        name = f"{label} (eff. rank {s.effective_rank:.0f}"
        name += (
            f", pattern {100 * s.pattern_variance_share:.1f} %)"
            if s.pattern_variance_share is not None
            else ")"
        )
        scree.loglog(pcs, share, color=colour, lw=1.6, label=name)
        cumulative.plot(pcs, np.cumsum(share), color=colour, lw=1.6, label=name)
    scree.set(xlabel="principal component (leading 200)", ylabel="share of variance", title="Scree (log–log)")
    cumulative.set(
        xlabel="principal components (leading 200)",
        ylabel="cumulative share of variance",
        ylim=(0, 1.0),
        xlim=(1, max(len(s.eigenvalues) for s in stats.values())),
        title="Cumulative variance",
    )
    for level in (0.5, 0.9):
        cumulative.axhline(level, color="grey", lw=0.8, ls="--")
    cumulative.set_xscale("log")
    scree.legend(loc="lower left", frameon=False, fontsize=8)
    for ax in (scree, cumulative):
        ax.grid(True, which="major", alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    return path
