"""Per-level classification metrics with explicit handling of undefined values.

Every metric here follows ``docs/metrics.md``. Decisions are the argmax of the probabilities (no tuned
thresholds). A per-class value whose denominator is zero (e.g. the AUC of a class absent from the test
split) is NaN and its name is recorded in ``LevelMetrics.undefined``; it is never silently replaced by
0, 0.5 or 1. Macro means average the defined per-class values only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import rankdata

__all__ = [
    "PER_CLASS_COLUMNS",
    "LevelMetrics",
    "class_keys",
    "level_metrics",
    "quadratic_weighted_kappa",
    "sanitize_key",
]

logger = logging.getLogger(__name__)

#: Columns of ``LevelMetrics.per_class`` (and, after ``level``/``class``, of the tidy table).
PER_CLASS_COLUMNS: tuple[str, ...] = (
    "support",
    "accuracy",
    "sensitivity",
    "specificity",
    "precision",
    "f1",
    "auc",
)
_RATE_COLUMNS = PER_CLASS_COLUMNS[1:]

# MLflow accepts [A-Za-z0-9_\-. /] in keys, but '.' separates the parts of our keys and ' '/'/' make keys
# awkward to query, so a class name keeps only letters, digits, '_' and '-'.
_DISALLOWED = re.compile(r"[^A-Za-z0-9_\-]+")


def sanitize_key(name: str) -> str:
    """Make a class name safe and readable as the last part of an MLflow metric key.

    Each run of characters other than ASCII letters, digits, ``_`` and ``-`` becomes one ``_``;
    surrounding whitespace is dropped first. Deterministic: ``"ISUP 0"`` → ``"ISUP_0"``,
    ``"3+4"`` → ``"3_4"``, ``"ASC-US"`` → ``"ASC-US"``, ``"Grade 1.5"`` → ``"Grade_1_5"``.

    Args:
        name: a class name.

    Returns:
        A non-empty key fragment matching ``[A-Za-z0-9_\\-]+``.
    """
    key = _DISALLOWED.sub("_", str(name).strip())
    return key or "_"


def class_keys(class_names: Sequence[str]) -> list[str]:
    """Sanitized, unique key fragments for an ordered list of class names.

    Names that collide after sanitizing (``"3+4"`` and ``"3 4"``) get their class index appended
    (``"3_4_0"``, ``"3_4_1"``) so that no two classes share a metric key.

    Raises:
        ValueError: if the keys still collide after disambiguation.
    """
    keys = [sanitize_key(n) for n in class_names]
    dup = {k for k in keys if keys.count(k) > 1}
    keys = [f"{k}_{i}" if k in dup else k for i, k in enumerate(keys)]
    if len(set(keys)) != len(keys):
        raise ValueError(f"class names {list(class_names)} give colliding metric keys {keys}.")
    return keys


@dataclass
class LevelMetrics:
    """Metrics of one label level (fine, coarse, coarse head).

    Attributes:
        overall: ``accuracy, balanced_accuracy, sensitivity, specificity, precision, f1_macro,
            f1_weighted, auc, [qwk,] n_undefined, n``.
        per_class: index = class names (K rows), columns = ``PER_CLASS_COLUMNS``.
        confusion: (K, K) int counts, rows = true class, columns = predicted class.
        undefined: names of NaN values, ``"<metric>.<class key>"`` for per-class values (e.g.
            ``"auc.ISUP_5"``) and ``"<metric>"`` for an overall value (e.g. ``"qwk"``).
        class_keys: sanitized class names used in metric keys, aligned with ``per_class.index``.
    """

    overall: dict[str, float]
    per_class: pd.DataFrame
    confusion: np.ndarray
    undefined: list[str] = field(default_factory=list)
    class_keys: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.class_keys:
            self.class_keys = class_keys([str(c) for c in self.per_class.index])

    def flat(self, prefix: str) -> dict[str, float]:
        """Flatten to MLflow metric keys.

        Returns:
            ``{prefix}.{name}`` for every overall value and ``{prefix}.{metric}.{class key}`` for every
            per-class column (support included). NaN values are kept so that every fold logs the same keys.
        """
        out = {f"{prefix}.{name}": float(value) for name, value in self.overall.items()}
        for key, (_, row) in zip(self.class_keys, self.per_class.iterrows(), strict=True):
            for col in PER_CLASS_COLUMNS:
                out[f"{prefix}.{col}.{key}"] = float(row[col])
        return out


def _validate(
    y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes, finiteness and label range; return (labels int64 (n,), probs float64 (n, K))."""
    y = np.asarray(y_true)
    p = np.asarray(probs, dtype=np.float64)
    k = len(class_names)
    if y.ndim != 1 or y.shape[0] == 0:
        raise ValueError(f"y_true must be a non-empty 1-D array of label indices, got shape {y.shape}.")
    if p.ndim != 2 or p.shape != (y.shape[0], k):
        raise ValueError(f"probs must have shape (n, K) = ({y.shape[0]}, {k}), got {p.shape}.")
    if k < 1:
        raise ValueError("class_names must not be empty.")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"probs contain {int(np.sum(~np.isfinite(p)))} non-finite value(s).")
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        y = y.astype(np.int64)  # integral floats (e.g. from a DataFrame) are labels too
    if y.dtype.kind not in "iu":
        raise ValueError(f"y_true must hold integer label indices, got dtype {y.dtype}.")
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= k:
        raise ValueError(f"y_true labels must lie in 0..{k - 1}, got range {y.min()}..{y.max()}.")
    return y, p


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise, NaN where den == 0 (the value is undefined, not 0)."""
    num = num.astype(np.float64)
    den = den.astype(np.float64)
    out = np.full_like(num, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _ovr_auc(pos: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of ``scores`` for ``pos`` vs rest; NaN when either side is empty.

    Computed as the Mann–Whitney statistic with mid-ranks, AUC = (R₊ − n₊(n₊+1)/2) / (n₊ n₋), where R₊ is
    the sum of the positives' ranks among all scores. This is the area under the empirical ROC curve with
    ties counted half, i.e. the value of `sklearn.metrics.roc_auc_score` (tested to 1e-12), without its
    input validation, which dominated the cost of the bootstrap (≈6× slower per resample).
    """
    pos = np.asarray(pos, dtype=bool)
    n_pos = int(pos.sum())
    n_neg = pos.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(np.asarray(scores, dtype=np.float64))  # mid-ranks: ties get the mean of their ranks
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _nanmean(values: np.ndarray) -> float:
    """Mean of the finite entries; NaN (without a RuntimeWarning) if there are none."""
    ok = ~np.isnan(values)
    return float(values[ok].mean()) if ok.any() else float("nan")


def quadratic_weighted_kappa(confusion: np.ndarray) -> float:
    """Cohen's κ with weights (i - j)² from a (K, K) confusion matrix; NaN if the expected disagreement is 0."""
    c = confusion.astype(np.float64)
    k = c.shape[0]
    idx = np.arange(k, dtype=np.float64)
    w = (idx[:, None] - idx[None, :]) ** 2  # the usual 1/(K-1)² normalisation cancels in the ratio
    expected = np.outer(c.sum(axis=1), c.sum(axis=0)) / c.sum()
    den = float((w * expected).sum())
    return 1.0 - float((w * c).sum()) / den if den > 0 else float("nan")


def level_metrics(
    y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str], *, ordinal: bool = False
) -> LevelMetrics:
    """Compute all metrics of one label level from true labels and class probabilities.

    Args:
        y_true: (n,) int label indices in ``0..K-1``.
        probs: (n, K) class probabilities (any finite scores work; the prediction is their argmax,
            ties going to the lowest index).
        class_names: K class names, in label-index order.
        ordinal: also compute the quadratic weighted kappa ``qwk``.

    Returns:
        The level's ``LevelMetrics``; see ``docs/metrics.md`` for every definition.

    Raises:
        ValueError: on wrong shapes, non-finite probabilities or labels out of range (programming errors).
    """
    names = [str(c) for c in class_names]
    y, p = _validate(y_true, probs, names)
    n, k = p.shape
    keys = class_keys(names)
    pred = p.argmax(axis=1)
    confusion = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    per_class = _per_class_table(confusion, y, p, names)
    undefined = [
        f"{col}.{key}"
        for col in _RATE_COLUMNS
        for key, v in zip(keys, per_class[col], strict=True)
        if np.isnan(v)
    ]
    n_undefined = len(undefined)
    overall = _overall(per_class, confusion, n, ordinal=ordinal)
    undefined += [name for name, v in overall.items() if np.isnan(v)]
    overall["n_undefined"] = float(n_undefined)
    overall["n"] = float(n)
    if undefined:
        logger.debug("undefined metrics (NaN) for classes %s: %s", names, undefined)
    return LevelMetrics(overall, per_class, confusion, undefined, keys)


def _per_class_table(confusion: np.ndarray, y: np.ndarray, p: np.ndarray, names: list[str]) -> pd.DataFrame:
    """``PER_CLASS_COLUMNS`` per class (one-vs-rest) from the (K, K) confusion, labels (n,), probs (n, K)."""
    n, k = p.shape
    tp = np.diag(confusion).astype(np.int64)
    support = confusion.sum(axis=1)  # TP + FN
    predicted = confusion.sum(axis=0)  # TP + FP
    fn, fp = support - tp, predicted - tp
    tn = n - tp - fn - fp
    auc = np.array([_ovr_auc(y == j, p[:, j]) for j in range(k)])
    return pd.DataFrame(
        {
            "support": support,
            "accuracy": (tp + tn) / n,
            "sensitivity": _ratio(tp, tp + fn),
            "specificity": _ratio(tn, tn + fp),
            "precision": _ratio(tp, tp + fp),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn),
            "auc": auc,
        },
        index=pd.Index(names, name="class"),
    )


def _overall(per_class: pd.DataFrame, confusion: np.ndarray, n: int, *, ordinal: bool) -> dict[str, float]:
    """Overall values: accuracy, macro means of the defined per-class values, support-weighted F1 [, qwk]."""
    tp = np.diag(confusion).astype(np.int64)
    support = confusion.sum(axis=1)
    f1 = per_class["f1"].to_numpy()
    weighted_ok = (support > 0) & ~np.isnan(f1)
    sens = _nanmean(per_class["sensitivity"].to_numpy())
    overall: dict[str, float] = {
        "accuracy": float(tp.sum() / n),
        "balanced_accuracy": sens,
        "sensitivity": sens,
        "specificity": _nanmean(per_class["specificity"].to_numpy()),
        "precision": _nanmean(per_class["precision"].to_numpy()),
        "f1_macro": _nanmean(f1),
        "f1_weighted": float((f1[weighted_ok] * support[weighted_ok]).sum() / support[weighted_ok].sum()),
        "auc": _nanmean(per_class["auc"].to_numpy()),
    }
    if ordinal:
        overall["qwk"] = quadratic_weighted_kappa(confusion)
    return overall
