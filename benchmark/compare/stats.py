"""Fold statistics for `benchmark compare`: mean ± std, best method and two paired tests per method.

* ``p_value``: two-sided Wilcoxon signed-rank test (exact for small samples). With J paired folds and no
  zero differences it cannot go below 2 / 2^J (0.0625 at J = 5), see `min_wilcoxon_p`.
* ``p_nb``: the Nadeau & Bengio (2003) corrected resampled t-test, which can reach small p-values with few
  folds because it models the fold-to-fold variance instead of ranking the differences.

Formulas: ``docs/metrics.md`` ("Comparing methods").
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import t as student_t
from scipy.stats import wilcoxon

__all__ = ["corrected_resampled_t", "min_wilcoxon_p", "paired_wilcoxon", "split_ratio", "summarise"]


def _pairs(a: pd.Series, b: pd.Series) -> pd.DataFrame:
    """Folds where both series are finite, as columns ``a`` and ``b``."""
    return pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()


def paired_wilcoxon(a: pd.Series, b: pd.Series) -> float:
    """Two-sided Wilcoxon signed-rank p-value of ``a`` vs ``b`` paired by fold index.

    Args:
        a, b: per-fold values indexed by fold; only folds where both are finite are paired.

    Returns:
        The p-value, or NaN with fewer than two pairs or when every difference is zero (the test is
        undefined there). With 5 folds the smallest attainable exact p is 0.0625 (`min_wilcoxon_p`).
    """
    pairs = _pairs(a, b)
    if len(pairs) < 2 or bool((pairs["a"] == pairs["b"]).all()):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on ties / zero differences / small n
        try:
            p = float(wilcoxon(pairs["a"].to_numpy(), pairs["b"].to_numpy(), alternative="two-sided").pvalue)
        except ValueError:
            return math.nan
    return p if math.isfinite(p) else math.nan


def min_wilcoxon_p(n_pairs: int) -> float:
    """Smallest two-sided p the exact Wilcoxon signed-rank test can return with ``n_pairs`` non-zero
    differences: 2 / 2^J, reached when all J differences have the same sign (0.0625 at J = 5).

    Why: under H0 each of the 2^J sign patterns is equally likely and the most extreme statistic is
    matched by exactly one pattern per tail. NaN for J < 1.
    """
    return 2.0 / 2.0**n_pairs if n_pairs >= 1 else math.nan


def corrected_resampled_t(a: pd.Series, b: pd.Series, ratio: float) -> float:
    """Two-sided p of the Nadeau–Bengio corrected resampled t-test of ``a`` vs ``b`` paired by fold.

    With the paired differences d_j = a_j − b_j over the J folds where both are finite,

        t = mean(d) / sqrt((1/J + n_test/n_train) · var(d, ddof=1)),   p = 2 · P(T_{J−1} ≥ |t|)

    (Nadeau & Bengio 2003, "Inference for the generalization error", Machine Learning 52:239–281; the
    n_test/n_train term corrects the variance for the overlap of the training sets between folds).

    Args:
        a, b: per-fold values indexed by fold.
        ratio: n_test / n_train of the protocol (≈ 1/(k−1) for k-fold).

    Returns:
        The p-value; NaN with fewer than two pairs or a non-finite / negative ``ratio``.

    Notes:
        When var(d) = 0 the statistic is 0/0 or x/0: identical results (every d_j = 0) give p = 1 (no
        evidence of a difference), and a constant non-zero difference (every d_j = c ≠ 0) gives p = 0
        (|t| = ∞). Both are limits of the formula, not estimates: with so few folds a constant difference
        is usually an artefact (e.g. a metric saturated at 1), so read it with the fold values.
    """
    pairs = _pairs(a, b)
    n = len(pairs)
    if n < 2 or not (math.isfinite(ratio) and ratio >= 0):
        return math.nan
    d = (pairs["a"] - pairs["b"]).to_numpy(dtype=np.float64)
    mean = float(d.mean())
    var = float(d.var(ddof=1))
    # Differences equal up to rounding (e.g. 0.9 - 0.8 vs 0.8 - 0.7) count as constant.
    if var <= (1e-12 * max(1.0, float(np.abs(d).max()))) ** 2:
        return 1.0 if abs(mean) <= 1e-12 else 0.0
    t = mean / math.sqrt((1.0 / n + ratio) * var)
    return float(2.0 * student_t.sf(abs(t), df=n - 1))


def _int(params: Mapping[str, str], key: str) -> int | None:
    value = params.get(key, "")
    return int(value) if value.isdigit() else None


def split_ratio(params: Sequence[Mapping[str, str]], n_fold_ids: int) -> tuple[float, str]:
    """n_test / n_train of the protocol for `corrected_resampled_t`, and where it came from.

    Args:
        params: the fold runs' MLflow params (fold runs log ``n_train``, ``n_val``, ``n_test`` and
            ``cv.n_folds``).
        n_fold_ids: distinct fold indices among the runs (the fallback k when ``cv.n_folds`` is missing).

    Returns:
        The mean over runs of n_test / n_train when the runs logged both (n_train is the part the model was
        fitted on, validation excluded); else 1 / (k − 1) with k = ``cv.n_folds`` (or ``n_fold_ids``);
        NaN when k < 2.
    """
    ratios = [
        n_test / n_train
        for p in params
        if (n_test := _int(p, "n_test")) is not None and (n_train := _int(p, "n_train"))
    ]
    if ratios:
        return float(np.mean(ratios)), "n_test/n_train logged by the fold runs"
    ks = [k for p in params if (k := _int(p, "cv.n_folds")) is not None]
    k = max(set(ks), key=ks.count) if ks else n_fold_ids
    return (1.0 / (k - 1), f"1/(k-1), k = {k}") if k >= 2 else (math.nan, "unknown")


def summarise(
    folds: pd.DataFrame,
    by: list[str],
    order: Sequence[str],
    reference: str | None = None,
    ratio: float = math.nan,
) -> pd.DataFrame:
    """mean, std (ddof=1), n, best and the paired tests vs the best method (or ``reference``) per group.

    Args:
        folds: long frame with columns method, config_hash, fold, value and the ``by`` columns.
        by: grouping columns (e.g. ``["metric"]``).
        order: method display order; ties for "best" go to the earlier method.
        reference: anchor method of the tests (None: the best method of each group).
        ratio: n_test / n_train for `corrected_resampled_t` (NaN: ``p_nb`` is NaN).

    Returns:
        One row per (method, group): method, config_hash, *by, mean, std, n, p_value (Wilcoxon),
        p_nb (corrected t), n_pairs (folds paired with the anchor), best.
    """
    rows: list[dict[str, object]] = []
    for key, group in folds.groupby(by, sort=False):
        series = {m: g.set_index("fold")["value"] for m, g in group.groupby("method", sort=False)}
        means = {m: float(s.mean()) for m, s in series.items()}
        finite = [v for v in means.values() if math.isfinite(v)]
        top = max(finite) if finite else math.nan
        best = next((m for m in order if m in means and means[m] == top), None)
        anchor = reference if reference is not None else best
        for m in (m for m in order if m in series):
            s = series[m]
            tested = anchor is not None and m != anchor and anchor in series
            other = series[anchor] if tested and anchor is not None else None
            rows.append(
                {
                    "method": m,
                    "config_hash": group.loc[group["method"] == m, "config_hash"].iloc[0],
                    **dict(zip(by, key, strict=True)),
                    "mean": means[m],
                    "std": float(s.std(ddof=1)),
                    "n": int(s.notna().sum()),
                    "p_value": math.nan if other is None else paired_wilcoxon(s, other),
                    "p_nb": math.nan if other is None else corrected_resampled_t(s, other, ratio),
                    "n_pairs": 0 if other is None else len(_pairs(s, other)),
                    "best": bool(means[m] == top),
                }
            )
    columns = ["method", "config_hash", *by, "mean", "std", "n", "p_value", "p_nb", "n_pairs", "best"]
    return pd.DataFrame(rows, columns=columns)
