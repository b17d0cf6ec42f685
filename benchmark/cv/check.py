"""Split-file checks: `check_splits` checks a split table against the dataset's label table.

Every rule raises `SplitError` with one line naming the file, the fold, an example slide or case,
the rule and the fix. Checks run cheapest-first and per fold, so a leaked case is reported as a
leak (not as its side effect, a slide tested twice).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from benchmark.core.errors import SplitError
from benchmark.cv.make import ROLES, class_case_counts, normalise_table

__all__ = ["fold_columns", "check_splits"]

_FOLD = re.compile(r"fold_(\d+)")


def fold_columns(splits: pd.DataFrame, *, source: str = "<splits>") -> list[str]:
    """The ``fold_0..fold_{n-1}`` column names of a split table, in order.

    Raises:
        SplitError: no fold column, or fold numbers that are not exactly 0..n-1.
    """
    cols = [c for c in splits.columns if isinstance(c, str) and _FOLD.fullmatch(c)]
    nums = sorted(int(_FOLD.fullmatch(c).group(1)) for c in cols)  # type: ignore[union-attr]
    if not nums:
        raise SplitError(
            f"split file {source}: no fold columns; expected slide_id, case_id, fold_0, fold_1, ..."
        )
    if nums != list(range(len(nums))):
        raise SplitError(
            f"split file {source}: fold columns must be fold_0..fold_{len(nums) - 1} without gaps, got "
            f"{', '.join(f'fold_{n}' for n in nums)}."
        )
    return [f"fold_{i}" for i in range(len(nums))]


def _fix(dataset: str | None) -> str:
    ds = f" --dataset {dataset}" if dataset else ""
    return f"regenerate with `benchmark splits make{ds} --new-splits`"


def _more(n: int) -> str:
    return f" (and {n - 1} more)" if n > 1 else ""


def check_splits(
    splits: pd.DataFrame,
    table: pd.DataFrame,
    protocol: str,
    *,
    source: str = "<splits>",
    dataset: str | None = None,
    repeats: int | None = None,
) -> None:
    """Check a split table against the label table; raise on the first broken rule.

    Args:
        splits: split table (``slide_id``, ``case_id``, ``fold_*``), any row order.
        table: label table (``slide_id``, ``case_id``, ``fine_label``[, ``fine_name``]).
        protocol: "kfold" (also requires every slide tested exactly once per repeat) or "mc".
        source: file name used in messages.
        dataset: dataset name used in the suggested fix command.
        repeats: kfold repeats R (fold columns r · k + f); None infers R from the file (the most common
            number of times a slide is tested, when it splits the columns into equal blocks of ≥ 2).

    Raises:
        SplitError: missing/extra/duplicate slides, a case id differing from the table, unknown roles,
            a case in two roles in one fold, an empty val or test part, a fine class without training
            slides in some fold, or (kfold) a slide tested more than once or never within a repeat.
    """
    if protocol not in ("kfold", "mc"):
        raise SplitError(f"split protocol must be 'kfold' or 'mc', got {protocol!r}.")
    if repeats is not None and repeats < 1:
        raise SplitError(f"split repeats must be ≥ 1, got {repeats}.")
    fix = _fix(dataset)
    for col in ("slide_id", "case_id"):
        if col not in splits.columns:
            raise SplitError(
                f"split file {source}: missing column {col!r}; expected slide_id, case_id, fold_0, ..."
            )
    folds = fold_columns(splits, source=source)
    norm = normalise_table(table)
    pos = _align_slides(splits, norm, source, fix)
    case = norm["case_id"].to_numpy(dtype=object)
    _check_case_ids(splits["case_id"].astype(str).to_numpy(dtype=object)[pos], case, norm, source, fix)
    y = norm["fine_label"].to_numpy()
    limit = _limit_text(norm, protocol)
    names = _class_names(table)
    tested = np.zeros((len(norm), len(folds)), dtype=bool)  # (S, F) slide i is test in fold column j
    for j, fold in enumerate(folds):
        roles = splits[fold].to_numpy(dtype=object)[pos]  # aligned to table order
        _check_fold(roles, case, y, norm, fold, source, fix, limit, names)
        tested[:, j] = roles == "test"
    if protocol == "kfold":
        _check_tested_once(tested, folds, norm, source, fix, repeats)


def _align_slides(splits: pd.DataFrame, norm: pd.DataFrame, source: str, fix: str) -> np.ndarray:
    """(S,) row of each table slide in the split file; raise on duplicate, missing or extra slides."""
    s_ids = splits["slide_id"].astype(str).to_numpy(dtype=object)
    dup = pd.Series(s_ids).duplicated().to_numpy()
    if dup.any():
        raise SplitError(
            f"split file {source}: slide {s_ids[dup][0]} is listed twice{_more(int(dup.sum()))}; {fix}."
        )
    pos = pd.Index(s_ids).get_indexer(norm["slide_id"])  # row of each table slide in the split file
    if (pos < 0).any():
        missing = norm["slide_id"].to_numpy()[pos < 0]
        raise SplitError(
            f"split file {source}: slide {missing[0]} of the dataset is missing{_more(len(missing))}; "
            f"the file belongs to other data; {fix}."
        )
    if len(s_ids) > len(norm):
        extra = np.setdiff1d(s_ids, norm["slide_id"].to_numpy())
        raise SplitError(
            f"split file {source}: slide {extra[0]} is not in the dataset{_more(len(extra))}; "
            f"the file belongs to other data; {fix}."
        )
    return pos


def _check_case_ids(
    file_case: np.ndarray, case: np.ndarray, norm: pd.DataFrame, source: str, fix: str
) -> None:
    """Raise if the file gives a slide another case than the table (both (S,), table order)."""
    bad = file_case != case
    if bad.any():
        i = int(np.argmax(bad))
        raise SplitError(
            f"split file {source}: slide {norm['slide_id'].iloc[i]} belongs to case {case[i]} in the dataset but to "
            f"case {file_case[i]} in the file{_more(int(bad.sum()))}; {fix}."
        )


def _check_fold(
    roles: np.ndarray,
    case: np.ndarray,
    y: np.ndarray,
    norm: pd.DataFrame,
    fold: str,
    source: str,
    fix: str,
    limit: str,
    names: dict[int, str],
) -> None:
    """One fold column's rules; ``roles``, ``case`` and ``y`` are (S,) in table order."""
    unknown = ~np.isin(roles, ROLES)
    if unknown.any():
        i = int(np.argmax(unknown))
        raise SplitError(
            f"split file {source}: {fold} has role {roles[i]!r} for slide {norm['slide_id'].iloc[i]}"
            f"{_more(int(unknown.sum()))}; roles must be train, val or test; {fix}."
        )
    _check_cases(roles, case, fold, source, fix)
    for role in ("val", "test"):
        if not (roles == role).any():
            raise SplitError(f"split file {source}: {fold} has an empty {role} part; {fix}.")
    missing_cls = np.setdiff1d(np.unique(y), np.unique(y[roles == "train"]))
    if missing_cls.size:
        c = int(missing_cls[0])
        raise SplitError(
            f"split file {source}: fine class {c}{names.get(c, '')} has no training slide in {fold}; "
            f"every class must be in every training part, {limit}; {fix}."
        )


def _infer_repeats(tested: np.ndarray) -> int:
    """Repeats of a k-fold file whose count was not given: the most common per-slide test count, when it
    divides the fold columns into blocks of ≥ 2 (else 1, so that a slide tested twice in a plain k-fold
    file is reported as such)."""
    counts = np.bincount(tested.sum(axis=1))
    mode = int(np.argmax(counts))
    n_cols = tested.shape[1]
    return mode if mode >= 1 and n_cols % mode == 0 and n_cols // mode >= 2 else 1


def _check_tested_once(
    tested: np.ndarray, folds: list[str], norm: pd.DataFrame, source: str, fix: str, repeats: int | None
) -> None:
    """Every slide tested exactly once per repeat (a block of ``len(folds) / repeats`` fold columns)."""
    n_rep = repeats if repeats is not None else _infer_repeats(tested)
    if len(folds) % n_rep:
        raise SplitError(
            f"split file {source}: {len(folds)} fold columns cannot hold {n_rep} repeats of equal size "
            f"(repeated k-fold numbers columns repeat · n_folds + fold); {fix}."
        )
    k = len(folds) // n_rep
    for r in range(n_rep):
        block = tested[:, r * k : (r + 1) * k]
        bad = block.sum(axis=1) != 1
        if not bad.any():
            continue
        i = int(np.argmax(bad))
        where = [folds[r * k + j] for j in np.flatnonzero(block[i])]
        what = f"tested in {len(where)} folds ({', '.join(where)})" if where else "never tested"
        if n_rep == 1:
            rule = (
                "k-fold splits test every slide exactly once (use protocol 'mc' for repeated random splits)"
            )
        else:
            what += f" {'of' if where else 'in'} repeat {r} ({folds[r * k]}..{folds[(r + 1) * k - 1]})"
            rule = "repeated k-fold splits test every slide exactly once per repeat"
        raise SplitError(
            f"split file {source}: slide {norm['slide_id'].iloc[i]} is {what}{_more(int(bad.sum()))}; {rule}; {fix}."
        )


def _check_cases(roles: np.ndarray, case: np.ndarray, fold: str, source: str, fix: str) -> None:
    """Raise if any case has slides in two roles in this fold (vectorised over (case, role) pairs)."""
    pairs = pd.DataFrame({"case": case, "role": roles}).drop_duplicates()
    counts = pairs["case"].value_counts(sort=False)
    leaked = counts.index[counts.to_numpy() > 1]
    if len(leaked):
        first = next(c for c in case if c in set(leaked))  # first leaked case in table order
        found = [r for r in ROLES if ((case == first) & (roles == r)).any()]
        raise SplitError(
            f"split file {source}: case {first} is in both {' and '.join(found)} in {fold}"
            f"{' (and ' + str(len(leaked) - 1) + ' more cases)' if len(leaked) > 1 else ''} "
            f"(cases must not cross roles); {fix}."
        )


def _limit_text(norm: pd.DataFrame, protocol: str) -> str:
    counts = class_case_counts(norm)
    if protocol == "kfold":
        return f"so n_folds must be ≤ the smallest class's case count ({int(counts.min())})"
    return f"so val/test may not take all cases of a class (smallest class: {int(counts.min())} cases)"


def _class_names(table: pd.DataFrame) -> dict[int, str]:
    """`` (NAME)`` suffixes for messages when the table carries a ``fine_name`` column."""
    if "fine_name" not in table.columns:
        return {}
    pairs = table[["fine_label", "fine_name"]].drop_duplicates("fine_label")
    return {int(k): f" ({v})" for k, v in zip(pairs["fine_label"], pairs["fine_name"], strict=True)}
