"""Reading folds out of a split table: the table positions of each role (`fold_indices`) and per-fold
counts (`describe_splits`, behind ``benchmark splits show``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.core.errors import SplitError
from benchmark.cv.check import fold_columns
from benchmark.cv.make import ROLES, normalise_table

__all__ = ["describe_splits", "fold_indices"]


def fold_indices(splits: pd.DataFrame, table: pd.DataFrame, fold: int) -> dict[str, np.ndarray]:
    """Integer positions into ``table`` of each role in one fold, matched by slide id.

    Returns:
        ``{"train": (n_train,), "val": (n_val,), "test": (n_test,)}`` int64 arrays, ascending.

    Raises:
        SplitError: ``fold`` out of range, or a split slide missing from the table.
    """
    folds = fold_columns(splits)
    if not 0 <= fold < len(folds):
        raise SplitError(
            f"fold {fold} is out of range; the split table has {len(folds)} folds (0..{len(folds) - 1})."
        )
    table_ids = pd.Index(table["slide_id"].astype(str).to_numpy(dtype=object))
    pos = table_ids.get_indexer(splits["slide_id"].astype(str).to_numpy(dtype=object))
    if (pos < 0).any():
        sid = splits["slide_id"].to_numpy()[pos < 0][0]
        raise SplitError(f"split slide {sid} is not in the dataset; the split file belongs to other data.")
    roles = splits[folds[fold]].to_numpy(dtype=object)
    return {role: np.sort(pos[roles == role]).astype(np.int64) for role in ROLES}


def describe_splits(
    splits: pd.DataFrame, table: pd.DataFrame, *, class_names: list[str] | None = None
) -> pd.DataFrame:
    """Per fold and role: slide and case counts and slides per fine class (``benchmark splits show``).

    Args:
        splits: split table.
        table: label table (``slide_id``, ``case_id``, ``fine_label``).
        class_names: column names for fine classes 0..C-1 (default: the class index as str).

    Returns:
        One row per (fold, role) with columns ``fold``, ``role``, ``slides``, ``cases`` and one count
        column per fine class present in the table.
    """
    norm = normalise_table(table)
    classes = np.unique(norm["fine_label"].to_numpy())
    names = [class_names[c] if class_names is not None else str(c) for c in classes]
    rows = []
    for k in range(len(fold_columns(splits))):
        idx = fold_indices(splits, norm, k)
        for role in ROLES:
            part = norm.iloc[idx[role]]
            per_class = part["fine_label"].value_counts()
            rows.append(
                {
                    "fold": k,
                    "role": role,
                    "slides": len(part),
                    "cases": part["case_id"].nunique(),
                    **{n: int(per_class.get(c, 0)) for c, n in zip(classes, names, strict=True)},
                }
            )
    return pd.DataFrame(rows)
