"""Identical, hashed folds for every method: make, validate, save, load and index split files.

A split file is a CSV ``slide_id, case_id, fold_0 … fold_{k-1}`` whose fold columns hold
``train``/``val``/``test``. One file per (dataset, protocol, k, repeats, seed) is generated once, saved
with its sha256 digest and reused by every method, so all methods see exactly the same folds.

Protocols (``CVConfig.protocol``):

- ``kfold`` (default): stratified (fine label), case-grouped k-fold with scikit-learn
  ``StratifiedGroupKFold`` semantics; validation is carved (stratified, grouped) from each fold's
  training part. Every slide is tested exactly once. With ``cv.repeats`` = R > 1 (repeated k-fold,
  e.g. 10-fold × 5 as in Ilse et al. 2018) the file holds R independent partitions, fold column
  ``r · k + f`` being fold f of repeat r, and every slide is tested exactly once per repeat.
- ``mc``: the HMIL paper's 10 Monte-Carlo class-stratified 80/10/10 splits (CLAM
  ``create_splits_seq.py`` style), here case-grouped. Test sets overlap across repetitions; compare
  methods with the Nadeau–Bengio corrected t-test, not a plain paired test.

Canonical bytes (what the digest hashes): UTF-8, columns ``slide_id, case_id, fold_0..fold_{k-1}``
in that order, a header row, rows in the stored order, ``\\n`` line ends, minimal quoting (Python
``csv`` module). ``save_splits`` writes exactly these bytes, so ``split_digest(path)`` equals
``split_digest(df)`` for a saved file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.core.config import CVConfig
from benchmark.core.errors import SplitError
from benchmark.cv.check import fold_columns
from benchmark.cv.check import validate_splits as _validate
from benchmark.cv.make import ROLES, normalise_table
from benchmark.cv.make import make_splits as _make

__all__ = [
    "ROLES",
    "canonical_bytes",
    "default_split_path",
    "describe_splits",
    "fold_columns",
    "fold_indices",
    "get_or_create_splits",
    "load_splits",
    "make_splits",
    "save_splits",
    "split_digest",
    "validate_splits",
]

log = logging.getLogger(__name__)


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
    return _make(table, cv)


def validate_splits(
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
    _validate(splits, table, protocol, source=source, dataset=dataset, repeats=repeats)


def canonical_bytes(splits: pd.DataFrame) -> bytes:
    """The canonical CSV bytes of a split table (see the module docstring).

    Raises:
        SplitError: the table lacks ``slide_id``/``case_id`` or fold columns.
    """
    for col in ("slide_id", "case_id"):
        if col not in splits.columns:
            raise SplitError(f"split table lacks column {col!r}; expected slide_id, case_id, fold_0, ...")
    cols = ["slide_id", "case_id", *fold_columns(splits)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(cols)
    writer.writerows(splits[cols].astype(str).itertuples(index=False, name=None))
    return buf.getvalue().encode("utf-8")


def split_digest(path_or_df: str | os.PathLike[str] | pd.DataFrame) -> str:
    """sha256 hex digest of a split file's bytes, or of the bytes ``save_splits`` would write for a table."""
    if isinstance(path_or_df, pd.DataFrame):
        return hashlib.sha256(canonical_bytes(path_or_df)).hexdigest()
    try:
        return hashlib.sha256(Path(path_or_df).read_bytes()).hexdigest()
    except OSError as e:
        raise SplitError(f"split file {path_or_df}: cannot be read ({e.strerror or e}).") from None


def save_splits(splits: pd.DataFrame, path: str | os.PathLike[str]) -> str:
    """Atomically write the canonical CSV (temp file in the same folder + ``os.replace``).

    Returns:
        The sha256 hex digest of the written bytes.
    """
    path = Path(path)
    data = canonical_bytes(splits)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # readers see the old file or the new one, never half a file
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    digest = hashlib.sha256(data).hexdigest()
    log.info("saved splits to %s (sha256 %s)", path, digest[:12])
    return digest


def load_splits(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a split CSV into a table with canonical column order (all values str).

    Accepts the columns in any order (e.g. ``case_id, slide_id, …``); rows keep the file's order.

    Raises:
        SplitError: unreadable or unparsable file, no rows, missing/unknown columns, fold columns
            not numbered 0..n-1, or empty cells (slide-level rules: `validate_splits`).
    """
    path = Path(path)
    fix = "delete it or pass --new-splits"
    try:
        text = path.read_bytes().decode("utf-8")
        rows = [r for r in csv.reader(io.StringIO(text, newline=""), strict=True) if r]
    except FileNotFoundError:
        raise SplitError(
            f"split file {path} does not exist; create it with `benchmark splits make`."
        ) from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise SplitError(
            f"split file {path} is not a readable CSV ({type(e).__name__}: {e}); {fix}."
        ) from None
    if not rows:
        raise SplitError(f"split file {path} is not a readable CSV (it is empty); {fix}.")
    header = rows[0]
    ragged = next((i for i, r in enumerate(rows) if len(r) != len(header)), None)
    if ragged is not None:
        raise SplitError(
            f"split file {path} is not a readable CSV (row {ragged + 1} has {len(rows[ragged])} fields, the header "
            f"{len(header)}); {fix}."
        )
    if len(set(header)) != len(header):
        raise SplitError(f"split file {path}: duplicate column names in header {header}; {fix}.")
    df = pd.DataFrame(rows[1:], columns=header, dtype=object)
    for col in ("slide_id", "case_id"):
        if col not in df.columns:
            raise SplitError(
                f"split file {path}: missing column {col!r} (header: {', '.join(map(str, df.columns))}); "
                f"expected slide_id, case_id, fold_0, ...; {fix}."
            )
    folds = fold_columns(df, source=str(path))
    extra = [c for c in df.columns if c not in ("slide_id", "case_id", *folds)]
    if extra:
        raise SplitError(
            f"split file {path}: unexpected column(s) {extra}; expected slide_id, case_id, fold_*; {fix}."
        )
    if len(df) == 0:
        raise SplitError(f"split file {path} has a header but no rows; {fix}.")
    df = df[["slide_id", "case_id", *folds]].reset_index(drop=True)
    empty = np.char.strip(df.to_numpy(dtype=str)) == ""
    if empty.any():
        row, col = np.argwhere(empty)[0]
        raise SplitError(
            f"split file {path}: empty {df.columns[col]} on data row {row + 1} (slide {df['slide_id'].iloc[row]!r}); "
            f"every cell must be filled; {fix}."
        )
    return df


def default_split_path(root: str | os.PathLike[str], dataset: str, cv: CVConfig) -> Path:
    """``root / dataset / "{protocol}-k{n_folds}-seed{seed}.csv"``; repeated k-fold (R > 1) adds ``x{R}``
    (e.g. ``kfold-k10x5-seed0.csv``), so a repeated file never shadows the single one."""
    reps = f"x{cv.repeats}" if cv.repeats > 1 else ""
    return Path(root) / dataset / f"{cv.protocol}-k{cv.n_folds}{reps}-seed{cv.seed}.csv"


def get_or_create_splits(
    root: str | os.PathLike[str],
    dataset_name: str,
    table: pd.DataFrame,
    cv: CVConfig,
    *,
    path: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> tuple[pd.DataFrame, Path, str]:
    """Reuse the saved split file for (dataset, cv) if present, else make, validate and save one.

    Args:
        root: split folder (files live at `default_split_path` unless ``path`` is given).
        dataset_name: dataset registry name (folder name and in messages).
        table: label table (see `make_splits`).
        cv: split protocol.
        path: explicit split file (e.g. converted paper splits); created there if absent.
        overwrite: regenerate even if the file exists (``--new-splits``).

    Returns:
        (splits, path, sha256 digest of the file).

    Raises:
        SplitError: an existing file is unreadable, has a fold-column count other than
            ``cv.total_folds`` or fails `validate_splits` (the message says to delete it or pass
            ``--new-splits``).
    """
    path = Path(path) if path is not None else default_split_path(root, dataset_name, cv)
    if path.exists() and not overwrite:
        splits = load_splits(path)
        n = len(fold_columns(splits, source=str(path)))
        if n != cv.total_folds:
            want = (
                f"cv.n_folds={cv.n_folds}"
                if cv.repeats == 1
                else f"cv.n_folds × cv.repeats = {cv.n_folds} × {cv.repeats} = {cv.total_folds}"
            )
            raise SplitError(
                f"split file {path} has {n} folds but {want}; pass --folds {n} to use it, "
                "or delete it / pass --new-splits to regenerate."
            )
        validate_splits(
            splits, table, cv.protocol, source=str(path), dataset=dataset_name, repeats=cv.repeats
        )
        digest = split_digest(path)
        log.info("reusing splits %s (sha256 %s)", path, digest[:12])
        return splits, path, digest
    if path.exists():
        log.warning(
            "--new-splits: replacing %s; results logged with its old digest are no longer comparable", path
        )
    splits = make_splits(table, cv)
    validate_splits(
        splits,
        table,
        cv.protocol,
        source=f"{path} (freshly generated)",
        dataset=dataset_name,
        repeats=cv.repeats,
    )
    digest = save_splits(splits, path)
    return splits, path, digest


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
