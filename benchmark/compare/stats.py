"""Fold statistics for `benchmark compare`: mean ± std, best method and paired Wilcoxon tests."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import pandas as pd
from scipy.stats import wilcoxon

__all__ = ["paired_wilcoxon", "summarise"]


def paired_wilcoxon(a: pd.Series, b: pd.Series) -> float:
    """Two-sided Wilcoxon signed-rank p-value of ``a`` vs ``b`` paired by fold index.

    Args:
        a, b: per-fold values indexed by fold; only folds where both are finite are paired.

    Returns:
        The p-value, or NaN with fewer than two pairs or when every difference is zero (the test is
        undefined there). With 5 folds the smallest attainable exact p is 0.0625.
    """
    pairs = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
    if len(pairs) < 2 or bool((pairs["a"] == pairs["b"]).all()):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on ties / zero differences / small n
        try:
            p = float(wilcoxon(pairs["a"].to_numpy(), pairs["b"].to_numpy(), alternative="two-sided").pvalue)
        except ValueError:
            return math.nan
    return p if math.isfinite(p) else math.nan


def summarise(
    folds: pd.DataFrame, by: list[str], order: Sequence[str], reference: str | None = None
) -> pd.DataFrame:
    """mean, std (ddof=1), n, best and Wilcoxon p vs the best method (or ``reference``) per group in ``by``."""
    rows: list[dict[str, object]] = []
    for key, group in folds.groupby(by, sort=False):
        series = {m: g.set_index("fold")["value"] for m, g in group.groupby("method", sort=False)}
        means = {m: float(s.mean()) for m, s in series.items()}
        finite = [v for v in means.values() if math.isfinite(v)]
        top = max(finite) if finite else math.nan
        best = next((m for m in order if m in means and means[m] == top), None)
        for m in (m for m in order if m in series):
            s = series[m]
            anchor = reference if reference is not None else best
            p = (
                math.nan
                if anchor is None or m == anchor or anchor not in series
                else paired_wilcoxon(s, series[anchor])
            )
            rows.append(
                {
                    "method": m,
                    "config_hash": group.loc[group["method"] == m, "config_hash"].iloc[0],
                    **dict(zip(by, key, strict=True)),
                    "mean": means[m],
                    "std": float(s.std(ddof=1)),
                    "n": int(s.notna().sum()),
                    "p_value": p,
                    "best": bool(means[m] == top),
                }
            )
    return pd.DataFrame(rows, columns=["method", "config_hash", *by, "mean", "std", "n", "p_value", "best"])
