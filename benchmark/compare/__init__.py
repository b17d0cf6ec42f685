"""Comparing methods on identical folds: mean ± std per method from MLflow fold runs, best method, Wilcoxon.

`compare` reads and selects the runs (`benchmark.compare.runs`), picks the metrics
(`benchmark.compare.metric_names`) and summarises them (`benchmark.compare.stats`) into a `Comparison`, whose
renderers live in `benchmark.compare.render` (text) and `benchmark.compare.plot` (figure).
"""

from benchmark.compare.comparison import LEVELS, Comparison, compare, plot_comparison
from benchmark.compare.stats import paired_wilcoxon
from benchmark.compare.table import ComparisonTable

__all__ = ["LEVELS", "Comparison", "ComparisonTable", "compare", "paired_wilcoxon", "plot_comparison"]
