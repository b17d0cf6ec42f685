"""Fold generation: `make_splits` draws the split table of a label table.

Two protocols, both case-grouped (all slides of a case share one role in a fold) and class-stratified:

- ``kfold``: scikit-learn ``StratifiedGroupKFold`` picks the test part of every fold (each slide is
  tested exactly once); validation is carved from each fold's training part by a second, seeded
  ``StratifiedGroupKFold`` of ``round(1 / val_fraction)`` splits, taking its first split.
- ``mc``: the HMIL paper's (CLAM-style) Monte-Carlo protocol: ``n_folds`` independent random
  train/val/test splits. Per-class case counts for val and test are fixed by a largest-remainder
  allocation, so they are identical in every repetition (as in the paper's released splits).

Repeated k-fold (``cv.repeats`` = R > 1, kfold only): R independent stratified partitions; fold
column ``r · n_folds + f`` is fold f of repeat r, and every slide is tested exactly once per repeat.
Repeat 0 is exactly the single (R = 1) k-fold partition (``random_state = cv.seed``); repeat r ≥ 1
shuffles with a seed drawn from ``np.random.SeedSequence([cv.seed, r])``.

Seeds: fold column/repetition ``i`` carves validation (kfold) or draws its split (mc) with
``np.random.SeedSequence(cv.seed).spawn(n_columns)[i]``, so adding folds or repeats never changes the
earlier columns' validation carving or mc draws.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from benchmark.core.config import CVConfig
from benchmark.core.errors import ConfigError, DataError, SplitError

__all__ = ["ROLES", "class_case_counts", "make_splits", "normalise_table"]

log = logging.getLogger(__name__)

ROLES = ("train", "val", "test")


def normalise_table(table: pd.DataFrame) -> pd.DataFrame:
    """Check a label table and return ``slide_id``/``case_id`` (str) and ``fine_label`` (int64) columns.

    A missing or empty ``case_id`` falls back to the slide id (each slide its own case).

    Raises:
        DataError: missing columns, no rows, duplicate slide ids or missing/non-integer labels.
    """
    missing = [c for c in ("slide_id", "fine_label") if c not in table.columns]
    if missing:
        raise DataError(f"label table lacks column(s) {missing}; it needs slide_id, case_id, fine_label.")
    if len(table) == 0:
        raise DataError("label table is empty; there is nothing to split.")
    slide = table["slide_id"].astype(str).to_numpy(dtype=object)
    dup = pd.Series(slide).duplicated()
    if dup.any():
        raise DataError(
            f"label table: slide id {slide[dup.to_numpy()][0]!r} appears twice; slide ids must be unique."
        )
    if "case_id" in table.columns:
        case_raw = table["case_id"]
        empty = case_raw.isna().to_numpy() | (case_raw.astype(str).str.strip() == "").to_numpy()
        case = np.where(empty, slide, case_raw.astype(str).to_numpy(dtype=object))
    else:
        case = slide.copy()
    labels = pd.to_numeric(table["fine_label"], errors="coerce")
    values = labels.to_numpy(dtype=float)
    bad = labels.isna().to_numpy() | (values % 1 != 0) | (values < 0)
    if bad.any():
        raise DataError(
            f"label table: slide {slide[bad][0]!r} has fine_label {table['fine_label'].iloc[int(np.argmax(bad))]!r}; "
            "fine labels must be integer class indices ≥ 0."
        )
    return pd.DataFrame(
        {"slide_id": slide, "case_id": case, "fine_label": labels.to_numpy().astype(np.int64)}
    )


def class_case_counts(norm: pd.DataFrame) -> pd.Series:
    """Number of distinct cases holding at least one slide of each fine class (index: class, sorted)."""
    return norm.drop_duplicates(["case_id", "fine_label"]).groupby("fine_label").size().sort_index()


def make_splits(table: pd.DataFrame, cv: CVConfig) -> pd.DataFrame:
    """Generate case-grouped, class-stratified splits for a label table.

    Args:
        table: (S rows) with ``slide_id``, ``case_id`` (empty → the slide is its own case),
            ``fine_label`` (int) and optionally ``site`` (currently not used for splitting).
        cv: protocol, number of folds (kfold) or repetitions (mc), repeats (kfold), fractions and seed.

    Returns:
        DataFrame (S rows, input order) with ``slide_id``, ``case_id``, ``fold_0..fold_{n-1}`` holding
        "train"/"val"/"test", n = ``cv.total_folds`` (k · repeats for kfold). Deterministic for a given
        (table, cv); repeat 0 of a repeated k-fold equals the single k-fold with the same seed.

    Raises:
        SplitError: kfold with ``n_folds`` above the smallest class's number of distinct cases, or a
            dataset too small to give every fold a non-empty val and test part.
        DataError: the table lacks columns or has duplicate slide ids / non-integer labels.

    Notes:
        kfold validation uses ``StratifiedGroupKFold(n_splits=round(1 / val_fraction))`` on the
        training part and takes its first split, so the val share is ≈ ``1 / round(1 / val_fraction)``
        of the training part. A rare class whose only training case would land in val is moved back
        to train (whole case).
    """
    if cv.seed < 0:
        raise ConfigError(f"cv.seed must be ≥ 0 (it seeds numpy and scikit-learn), got {cv.seed}.")
    norm = normalise_table(table)
    _check_fold_count(class_case_counts(norm), cv)
    # sklearn's StratifiedGroupKFold loops over cases in Python: ~4 s per call at 10k cases on a busy CPU.
    total = cv.total_folds
    log.info("making %d %s splits of %d slides (seed %d)...", total, cv.protocol, len(norm), cv.seed)
    seeds = np.random.SeedSequence(cv.seed).spawn(total)
    y = norm["fine_label"].to_numpy()
    groups = norm["case_id"].to_numpy(dtype=object)
    out = norm[["slide_id", "case_id"]].copy()
    if cv.protocol == "kfold":
        folds = _kfold(y, groups, cv, seeds)
    else:
        folds = [_mc_one(y, groups, cv, seq) for seq in seeds]
    for k, roles in enumerate(folds):
        _keep_classes_in_train(
            roles, y, groups, movable=("val",) if cv.protocol == "kfold" else ("val", "test")
        )
        _check_parts(roles, k, groups, cv)
        out[f"fold_{k}"] = roles
    log.info("made %d %s splits over %d cases", total, cv.protocol, len(np.unique(groups)))
    return out


def _check_fold_count(counts: pd.Series, cv: CVConfig) -> None:
    """kfold needs every class in every training part: at most as many folds as the rarest class has cases."""
    if cv.protocol == "kfold" and cv.n_folds > int(counts.min()):
        c = int(counts.idxmin())
        raise SplitError(
            f"cv.n_folds must be ≥ 2 and ≤ the smallest class's case count ({int(counts.min())}, fine class {c}), "
            f"got n_folds={cv.n_folds}; every class must appear in every fold's training part. "
            f"Lower --folds to ≤ {int(counts.min())} or use --protocol mc."
        )


def _check_parts(roles: np.ndarray, k: int, groups: np.ndarray, cv: CVConfig) -> None:
    """Raise if fold ``k`` (roles (S,)) has an empty val or test part: the dataset is too small."""
    for role in ("val", "test"):
        if not (roles == role).any():
            raise SplitError(
                f"fold_{k}: the {role} part is empty ({len(np.unique(groups))} cases in all); the dataset is "
                f"too small for protocol {cv.protocol!r} with val_fraction={cv.val_fraction}"
                f"{f', test_fraction={cv.test_fraction}' if cv.protocol == 'mc' else ''}; "
                "raise the fractions or lower --folds."
            )


def _seed_int(seq: np.random.SeedSequence) -> int:
    """A 32-bit integer seed for scikit-learn's ``random_state`` from a SeedSequence."""
    return int(seq.generate_state(1, dtype=np.uint32)[0])


def _repeat_seed(seed: int, repeat: int) -> int:
    """``random_state`` of repeat ``repeat``'s test partition: the split seed itself for repeat 0 (so that
    R = 1 files are unchanged), else an independent 32-bit seed from ``SeedSequence([seed, repeat])``."""
    return seed if repeat == 0 else _seed_int(np.random.SeedSequence([seed, repeat]))


def _kfold(
    y: np.ndarray, groups: np.ndarray, cv: CVConfig, seeds: list[np.random.SeedSequence]
) -> list[np.ndarray]:
    """Role arrays (S,) per fold column (repeat-major): SGKF test parts, then a seeded SGKF val carve of
    each training part."""
    n_val_splits = max(2, round(1 / cv.val_fraction))
    folds = []
    with warnings.catch_warnings():
        # "least populated class has only m members": expected for rare classes; grouping is what matters.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        outer_splits = [
            split
            for r in range(cv.repeats)
            for split in StratifiedGroupKFold(
                n_splits=cv.n_folds, shuffle=True, random_state=_repeat_seed(cv.seed, r)
            ).split(np.zeros(len(y)), y, groups)
        ]
        for k, (train_idx, test_idx) in enumerate(outer_splits):
            roles = np.full(len(y), "train", dtype=object)
            roles[test_idx] = "test"
            n_groups = len(np.unique(groups[train_idx]))
            if n_groups < 2:
                raise SplitError(
                    f"fold_{k}: the training part holds {n_groups} case(s); cannot carve a validation set. "
                    "Lower --folds or add cases."
                )
            n_inner = min(n_val_splits, n_groups)
            counts = np.bincount(y[train_idx])
            if (counts[counts > 0] < n_inner).all():
                # scikit-learn refuses when every class is smaller than n_splits (tiny datasets): carve a
                # larger validation share instead of failing; the split file records what happened.
                n_inner = max(2, int(counts.max()))
                log.warning(
                    "fold_%d: classes too small for a 1/%d validation carve; using 1/%d",
                    k,
                    n_val_splits,
                    n_inner,
                )
            inner = StratifiedGroupKFold(n_splits=n_inner, shuffle=True, random_state=_seed_int(seeds[k]))
            _, val_rel = next(inner.split(np.zeros(len(train_idx)), y[train_idx], groups[train_idx]))
            roles[train_idx[val_rel]] = "val"
            folds.append(roles)
    return folds


def _mc_one(y: np.ndarray, groups: np.ndarray, cv: CVConfig, seq: np.random.SeedSequence) -> np.ndarray:
    """One Monte-Carlo train/val/test role array (S,), class-stratified over cases.

    Each case is stratified by its majority fine class (ties → the smaller class index). Per-class
    test/val case counts come from a largest-remainder allocation of ``round(n_cases · fraction)``,
    capped so that every class keeps at least one training case.
    """
    case_names, case_of_slide = np.unique(groups, return_inverse=True)
    n_classes = int(y.max()) + 1
    votes = np.zeros((len(case_names), n_classes), dtype=np.int64)
    np.add.at(votes, (case_of_slide, y), 1)
    case_class = votes.argmax(axis=1)  # argmax picks the smallest index on ties
    n_c = np.bincount(case_class, minlength=n_classes)
    n_cases = len(case_names)
    n_test = _allocate(
        max(1, round(n_cases * cv.test_fraction)), n_c * cv.test_fraction, np.maximum(n_c - 1, 0), n_c
    )
    n_val = _allocate(
        max(1, round(n_cases * cv.val_fraction)), n_c * cv.val_fraction, np.maximum(n_c - 1 - n_test, 0), n_c
    )
    rng = np.random.default_rng(seq)
    case_role = np.full(n_cases, "train", dtype=object)
    for c in range(n_classes):
        members = rng.permutation(np.flatnonzero(case_class == c))
        case_role[members[: n_test[c]]] = "test"
        case_role[members[n_test[c] : n_test[c] + n_val[c]]] = "val"
    return case_role[case_of_slide]


def _allocate(total: int, quota: np.ndarray, cap: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Integer allocation (C,) summing to ≤ ``total``, near ``quota`` (C,), never above ``cap`` (C,).

    Floors first, then hands out the remaining units one at a time by largest remainder (ties: larger
    class, then smaller index), skipping classes at their cap. Deterministic: no randomness involved.
    """
    alloc = np.minimum(np.floor(quota).astype(np.int64), cap)
    while alloc.sum() < total:
        open_ = np.flatnonzero(alloc < cap)
        if open_.size == 0:
            break
        best = min(open_, key=lambda c: (-(quota[c] - alloc[c]), -size[c], c))
        alloc[best] += 1
    return alloc


def _keep_classes_in_train(
    roles: np.ndarray, y: np.ndarray, groups: np.ndarray, movable: tuple[str, ...]
) -> None:
    """Move whole cases back to train (in place) until every fine class has a training slide.

    Only needed for rare classes or cases whose slides carry several fine classes. The case moved is
    the smallest (fewest slides, then case id) in a ``movable`` role that holds the missing class.
    """
    for c in np.unique(y):
        if ((roles == "train") & (y == c)).any():
            continue
        candidates = np.unique(groups[np.isin(roles, movable) & (y == c)])
        if candidates.size == 0:
            continue  # validation reports it with the fold and the limit
        sizes = {g: int((groups == g).sum()) for g in candidates}
        case = min(candidates, key=lambda g: (sizes[g], str(g)))
        roles[groups == case] = "train"
