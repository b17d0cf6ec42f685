"""The rich table of ``benchmark data stats`` (feature statistics of a dataset)."""

from __future__ import annotations

from rich.table import Table

from benchmark.data.stats import FeatureStats

__all__ = ["stats_table"]


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def stats_table(name: str, s: FeatureStats) -> Table:
    """One two-column table: statistic, value (shares in %)."""
    table = Table(
        title=f"{name}: instance-feature statistics",
        caption=f"{s.n_sampled:,} of {s.n_instances:,} instances sampled (seeded); bag sizes and "
        "slide means use every slide",
    )
    table.add_column("statistic")
    table.add_column("value", justify="right")
    b, m, sd = s.bag_size, s.dim_mean, s.dim_std
    rows = [
        ("slides · instances · D", f"{s.n_slides:,} · {s.n_instances:,} · {s.dim}"),
        (
            "bag size min / p10 / median / p90 / max",
            f"{b['min']:.0f} / {b['p10']:.0f} / {b['median']:.0f} / {b['p90']:.0f} / {b['max']:.0f}",
        ),
        ("bag size mean", f"{b['mean']:.1f}"),
        ("per-dimension mean (min / median / max)", f"{m['min']:.3g} / {m['median']:.3g} / {m['max']:.3g}"),
        ("per-dimension std (min / median / max)", f"{sd['min']:.3g} / {sd['median']:.3g} / {sd['max']:.3g}"),
        ("negative entries", _pct(s.frac_negative)),
        ("exactly-zero entries", _pct(s.frac_zero)),
        (
            "variance in PC1 / top 10 / top 100",
            f"{_pct(s.pc1_share)} / {_pct(s.top10_share)} / {_pct(s.top100_share)}",
        ),
        ("PCs for 50 % / 90 % of the variance", f"{s.pcs_for_50} / {s.pcs_for_90}"),
        ("effective rank (participation ratio)", f"{s.effective_rank:.1f}"),
        (
            "label-pattern variance share (instances)",
            _pct(s.pattern_variance_share)
            if s.pattern_variance_share is not None
            else "– (no instance labels)",
        ),
        ("between-class share of slide-mean variance", _pct(s.slide_class_variance_share)),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table
