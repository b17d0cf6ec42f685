"""Caption and footer text of the `benchmark compare` tables: which tests were run, on how many folds, what
they can show, and the bootstrap CIs. Shared by every text renderer (`benchmark.compare.render`).

With J paired folds the exact two-sided Wilcoxon p cannot go below 2 / 2^J (0.0625 at J = 5): the footer
says so, names the corrected t-test that can answer the question, and points at repeated k-fold
(``cv.repeats``).
"""

from __future__ import annotations

import math

from benchmark.compare.runs import short
from benchmark.compare.stats import min_wilcoxon_p
from benchmark.compare.table import ComparisonTable

__all__ = ["ALPHA", "caption", "footer", "n_paired_folds", "test_summary"]

ALPHA = 0.05  # the level below which the Wilcoxon floor is worth a warning


def _anchor(cmp: ComparisonTable) -> str:
    return f"{cmp.reference}" if cmp.reference else "the best method"


def _p(p: float) -> str:
    if not math.isfinite(p):
        return "–"
    return "<0.001" if p < 1e-3 else f"{p:.3g}"


def n_paired_folds(cmp: ComparisonTable) -> int:
    """J: folds paired in the primary metric's tests (the most any method shares with the anchor), or the
    number of folds when nothing is tested (a single method)."""
    rows = cmp.table[cmp.table["metric"] == cmp.primary]
    paired = int(rows["n_pairs"].max()) if "n_pairs" in rows and len(rows) else 0
    return paired or int(cmp.folds["fold"].nunique())


def test_summary(cmp: ComparisonTable) -> dict[str, object]:
    """The tests and the CI as data (for JSON): folds, Wilcoxon floor, corrected-t df and ratio, bootstrap."""
    j = n_paired_folds(cmp)
    return {
        "anchor": cmp.reference or "best",
        "metric": cmp.primary,
        "n_folds": j,
        "wilcoxon": {"sided": "two", "min_attainable_p": min_wilcoxon_p(j)},
        "corrected_t": {
            "df": j - 1,
            "n_test_over_n_train": cmp.ratio if math.isfinite(cmp.ratio) else None,
            "ratio_source": cmp.ratio_source,
        },
        "bootstrap": {"confidence": 0.95, "n_boot": cmp.n_boot, "seed": cmp.seed, "stratified": "class"},
    }


def caption(cmp: ComparisonTable) -> str:
    """One line above the table: what the cells are and what the p column is."""
    split = short(cmp.split_digest) if cmp.split_digest else "untagged"
    return (
        f"{cmp.experiment}, level {cmp.level}, split {split}: mean ± std over folds, best in bold; "
        f"p = two-sided Wilcoxon signed-rank vs {_anchor(cmp)} on {cmp.primary}, paired by fold "
        f"({n_paired_folds(cmp)} folds)"
    )


def _wilcoxon_line(cmp: ComparisonTable, j: int) -> str:
    floor = min_wilcoxon_p(j)
    line = f"Wilcoxon signed-rank (the p column), {j} paired folds: smallest attainable p = {_p(floor)}"
    if math.isfinite(floor) and floor > ALPHA:
        line += (
            f"; Wilcoxon cannot go below p = {_p(floor)} with {j} folds, so it can never be significant at "
            f"{ALPHA}; use repeated k-fold (`benchmark run --repeats R`) for more power"
        )
    return line + "."


def _nb_line(cmp: ComparisonTable, j: int) -> str:
    rows = cmp.table[(cmp.table["metric"] == cmp.primary) & cmp.table["p_nb"].notna()]
    ratio = f"{cmp.ratio:.3g}" if math.isfinite(cmp.ratio) else "unknown"
    values = "; ".join(f"{m} p = {_p(p)}" for m, p in zip(rows["method"], rows["p_nb"], strict=True))
    return (
        f"Nadeau–Bengio corrected resampled t vs {_anchor(cmp)} on {cmp.primary} (two-sided, df = {j - 1}, "
        f"n_test/n_train = {ratio}, {cmp.ratio_source or 'no split sizes'}): {values or '–'}."
    )


def _ci_line(cmp: ComparisonTable) -> str | None:
    if cmp.n_boot < 1:
        return None
    values = "; ".join(
        f"{m} {ci.estimate:.3f} [{ci.low:.3f}, {ci.high:.3f}]"
        for m in cmp.methods
        if (ci := cmp.intervals.get(m)) is not None
    )
    return (
        f"{cmp.primary} on the pooled out-of-fold test predictions with a 95 % percentile bootstrap CI "
        f"(B = {cmp.n_boot}, slides resampled within each class, seed {cmp.seed}): {values or '– (none)'}."
    )


def footer(cmp: ComparisonTable) -> list[str]:
    """Lines under the table: each test with its folds and limits, then the bootstrap CIs."""
    j = n_paired_folds(cmp)
    lines = [_wilcoxon_line(cmp, j), _nb_line(cmp, j)]
    ci = _ci_line(cmp)
    return lines + ([ci] if ci else [])
