"""Split files: the canonical CSV, its sha256 digest, atomic save, strict load and reuse per (dataset, cv).

A split file is a CSV ``slide_id, case_id, fold_0 … fold_{k-1}`` whose fold columns hold
``train``/``val``/``test``. One file per (dataset, protocol, k, repeats, seed) is generated once
(`benchmark.cv.make`), saved with its sha256 digest and reused by every method, so all methods see exactly
the same folds.

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
from benchmark.cv.check import check_splits, fold_columns
from benchmark.cv.folds import describe_splits, fold_indices  # re-exported: callers import them from here
from benchmark.cv.make import ROLES, make_splits

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
    "splits_of",
    "check_splits",
]

log = logging.getLogger(__name__)


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
            not numbered 0..n-1, or empty cells (slide-level rules: `check_splits`).
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
            ``cv.total_folds`` or fails `check_splits` (the message says to delete it or pass
            ``--new-splits``).
    """
    path = Path(path) if path is not None else default_split_path(root, dataset_name, cv)
    if path.exists() and not overwrite:
        splits = _load_checked(path, dataset_name, table, cv)
        digest = split_digest(path)
        log.info("reusing splits %s (sha256 %s)", path, digest[:12])
        return splits, path, digest
    if path.exists():
        log.warning(
            "--new-splits: replacing %s; results logged with its old digest are no longer comparable", path
        )
    splits = make_splits(table, cv)
    check_splits(
        splits,
        table,
        cv.protocol,
        source=f"{path} (freshly generated)",
        dataset=dataset_name,
        repeats=cv.repeats,
    )
    digest = save_splits(splits, path)
    return splits, path, digest


def _load_checked(path: Path, dataset_name: str, table: pd.DataFrame, cv: CVConfig) -> pd.DataFrame:
    """An existing split file, loaded and checked against ``cv``'s fold count and the label table."""
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
    check_splits(splits, table, cv.protocol, source=str(path), dataset=dataset_name, repeats=cv.repeats)
    return splits


def splits_of(
    dataset_name: str, table: pd.DataFrame, cv: CVConfig, *, new_splits: bool = False
) -> tuple[pd.DataFrame, Path, str]:
    """The split table, file and digest a run uses: ``cv.splits_file`` when given (checked against
    ``table``), else the default file under ``cv.splits_dir`` (made on first use, then reused)."""
    if cv.splits_file:
        path = Path(cv.splits_file)
        splits = load_splits(path)
        check_splits(splits, table, cv.protocol, source=str(path))
        return splits, path, split_digest(path)
    return get_or_create_splits(cv.splits_dir, dataset_name, table, cv, overwrite=new_splits)
