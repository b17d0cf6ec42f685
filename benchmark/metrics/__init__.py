"""Test-set metrics: per-level values with undefined ones kept as NaN (`benchmark.metrics.level`) and the
fine / rolled-up coarse / coarse-head evaluation of a model's predictions (`benchmark.metrics.evaluate`).

The MLflow figures are in `benchmark.metrics.figures`, not imported here (matplotlib and seaborn are slow to
import and only fold logging needs them).
"""

from benchmark.metrics.evaluate import EvaluationResult, evaluate, per_class_table
from benchmark.metrics.level import (
    PER_CLASS_COLUMNS,
    LevelMetrics,
    class_keys,
    level_metrics,
    quadratic_weighted_kappa,
    sanitize_key,
)

__all__ = [
    "PER_CLASS_COLUMNS",
    "EvaluationResult",
    "LevelMetrics",
    "class_keys",
    "evaluate",
    "level_metrics",
    "per_class_table",
    "quadratic_weighted_kappa",
    "sanitize_key",
]
