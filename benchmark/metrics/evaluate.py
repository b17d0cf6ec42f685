"""Test-set evaluation of a (hierarchical) MIL model: fine, rolled-up coarse and coarse-head metrics.

The same protocol applies to every method (``docs/metrics.md``, ``hmil-method.md`` §12):

- ``fine``: metrics of the fine probabilities p (n × K_f);
- ``coarse``: metrics of the roll-up Mᵀp (n × K_c) against the parents of the fine labels, available for
  flat baselines and hierarchical models alike;
- ``coarse_head``: metrics of a model's own coarse head, when it has one (HMIL);
- ``hierarchy_consistency``: fraction of slides with parent(argmax p) == argmax coarse head.

Example::

    result = evaluate(y, probs, hierarchy, coarse_head_probs=coarse)
    mlflow.log_metrics(result.flat("test"))           # test.fine.auc, test.coarse.auc.benign, ...
    mlflow.log_table(per_class_table(result), "per_class_test.json")
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchmark.core.hierarchy import Hierarchy
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


@dataclass
class EvaluationResult:
    """Metrics of one evaluation (one fold's test or validation set).

    Attributes:
        levels: ``"fine"``, ``"coarse"`` and, for models with a coarse head, ``"coarse_head"``.
        hierarchy_consistency: fraction of slides whose predicted fine class has the predicted coarse-head
            class as parent; None without a coarse head.
    """

    levels: dict[str, LevelMetrics] = field(default_factory=dict)
    hierarchy_consistency: float | None = None

    def flat(self, prefix: str = "test") -> dict[str, float]:
        """All values as MLflow metric keys, e.g. ``test.fine.auc``, ``test.coarse.auc.benign``,
        ``test.coarse_head.specificity``, ``test.hierarchy_consistency``."""
        out: dict[str, float] = {}
        for level, metrics in self.levels.items():
            out.update(metrics.flat(f"{prefix}.{level}"))
        if self.hierarchy_consistency is not None:
            out[f"{prefix}.hierarchy_consistency"] = float(self.hierarchy_consistency)
        return out


def evaluate(
    fine_true: np.ndarray,
    fine_probs: np.ndarray,
    hierarchy: Hierarchy,
    coarse_head_probs: np.ndarray | None = None,
) -> EvaluationResult:
    """Evaluate fine predictions, their coarse roll-up and optionally a coarse head.

    Args:
        fine_true: (n,) int fine label indices.
        fine_probs: (n, K_f) fine class probabilities.
        hierarchy: the dataset's fine → coarse hierarchy (fixes class names, M and ordinality).
        coarse_head_probs: (n, K_c) probabilities of the model's own coarse head, or None.

    Returns:
        An ``EvaluationResult`` with levels ``fine``, ``coarse`` (from Mᵀp) and, when a coarse head is
        given, ``coarse_head`` plus ``hierarchy_consistency``. Coarse levels are ordinal (QWK) iff the
        hierarchy is.

    Raises:
        ValueError: on shapes inconsistent with the hierarchy, non-finite probabilities or labels out of
            range (programming errors, not user errors).
    """
    fine_probs = np.asarray(fine_probs, dtype=np.float64)
    if fine_probs.ndim != 2 or fine_probs.shape[1] != hierarchy.n_fine:
        raise ValueError(f"fine_probs must have shape (n, {hierarchy.n_fine}), got {fine_probs.shape}.")
    fine = level_metrics(fine_true, fine_probs, hierarchy.fine, ordinal=hierarchy.ordinal)
    # level_metrics validated the fine labels, so coarse_of cannot index out of range here.
    coarse_true = hierarchy.coarse_of(fine_true)
    levels = {
        "fine": fine,
        "coarse": level_metrics(
            coarse_true, hierarchy.roll_up(fine_probs), hierarchy.coarse, ordinal=hierarchy.ordinal
        ),
    }
    consistency: float | None = None
    if coarse_head_probs is not None:
        head = np.asarray(coarse_head_probs, dtype=np.float64)
        if head.shape != (fine_probs.shape[0], hierarchy.n_coarse):
            raise ValueError(
                f"coarse_head_probs must have shape ({fine_probs.shape[0]}, {hierarchy.n_coarse}), got {head.shape}."
            )
        levels["coarse_head"] = level_metrics(coarse_true, head, hierarchy.coarse, ordinal=hierarchy.ordinal)
        parent_of_pred = hierarchy.coarse_of(fine_probs.argmax(axis=1))
        consistency = float(np.mean(parent_of_pred == head.argmax(axis=1)))
    return EvaluationResult(levels, consistency)


def per_class_table(result: EvaluationResult) -> pd.DataFrame:
    """Tidy per-class table of every level, for ``mlflow.log_table``.

    Returns:
        One row per (level, class) with columns ``level, class, support, accuracy, sensitivity,
        specificity, precision, f1, auc`` (undefined values are NaN); levels in ``result.levels`` order,
        classes in label-index order.
    """
    frames = []
    for level, metrics in result.levels.items():
        frame = metrics.per_class.reset_index(names="class")
        frame.insert(0, "level", level)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["level", "class", *PER_CLASS_COLUMNS])
    table = pd.concat(frames, ignore_index=True)
    return table[["level", "class", *PER_CLASS_COLUMNS]]
