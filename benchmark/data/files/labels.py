"""Label tables for real datasets: the generic slide CSV and PANDA's ``train.csv``.

Parsers never stop at the first bad row: fatal problems (missing file, wrong header) raise
`DataError`, row-level problems (unknown label, duplicate id, ISUP/Gleason mismatch) drop the row
and are returned as one-line messages, so ``benchmark data check`` can list them all while loaders
raise on them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.core.errors import DataError
from benchmark.core.hierarchy import Hierarchy

__all__ = [
    "GLEASON_TO_ISUP",
    "PANDA_COLUMNS",
    "PANDA_KNOWN_MISLABELLED",
    "LabelTable",
    "read_label_csv",
    "read_panda_csv",
]

log = logging.getLogger(__name__)

PANDA_COLUMNS = ("image_id", "data_provider", "isup_grade", "gleason_score")
#: Karolinska slide with gleason_score 4+3 but isup_grade 2 (datasets-and-formats.md A1); dropped.
PANDA_KNOWN_MISLABELLED = "b0a92a74cb53899311acc30b7405e101"
#: ISUP grade as a function of the Gleason score (datasets-and-formats.md C2).
GLEASON_TO_ISUP = {
    "0+0": 0,
    "3+3": 1,
    "3+4": 2,
    "4+3": 3,
    "4+4": 4,
    "3+5": 4,
    "5+3": 4,
    "4+5": 5,
    "5+4": 5,
    "5+5": 5,
}
# Slide ids in label CSVs sometimes carry the WSI's file extension; feature files never do.
_WSI_SUFFIXES = (".svs", ".tiff", ".tif", ".ndpi", ".mrxs", ".scn", ".czi", ".bif", ".h5", ".pt")
_SHOW = 5


@dataclass
class LabelTable:
    """One row per labelled slide.

    Attributes:
        source: the CSV the labels came from.
        slide_ids: (S,) slide ids (feature file names without suffix).
        case_ids: (S,) patient/case ids (slide ids when the CSV has none).
        fine_labels: (S,) int64 indices into ``hierarchy.fine``.
        sites: (S,) acquisition site/provider, or None.
        problems: row-level problems (the rows are already dropped); loaders raise on the first.
        warnings: notes that do not stop loading (e.g. the dropped known-mislabelled PANDA slide).
        dropped: ids of rows that were dropped (they are still "listed", so their files are not extras).
    """

    source: Path
    slide_ids: list[str]
    case_ids: list[str]
    fine_labels: np.ndarray
    sites: list[str] | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def subset(self, keep: np.ndarray) -> LabelTable:
        """Rows where ``keep`` (S,) bool is True."""
        idx = np.flatnonzero(keep)
        return LabelTable(
            self.source,
            [self.slide_ids[i] for i in idx],
            [self.case_ids[i] for i in idx],
            self.fine_labels[idx],
            [self.sites[i] for i in idx] if self.sites is not None else None,
            list(self.problems),
            list(self.warnings),
            list(self.dropped),
        )


def _show(ids: list[str]) -> str:
    more = f" … (+{len(ids) - _SHOW} more)" if len(ids) > _SHOW else ""
    return ", ".join(ids[:_SHOW]) + more


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{what} {path} does not exist; pass --labels FILE or put it in the data directory.")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{what} {path} is not a readable CSV ({str(exc).splitlines()[0][:100]}); fix the file."
        ) from None
    df.columns = [str(c).strip() for c in df.columns]
    return df.apply(lambda col: col.str.strip())


def _strip_suffix(slide_id: str) -> str:
    low = slide_id.lower()
    for suf in _WSI_SUFFIXES:
        if low.endswith(suf):
            return slide_id[: -len(suf)]
    return slide_id


def _duplicates(ids: pd.Series, path: Path, id_col: str) -> tuple[np.ndarray, list[str]]:
    """(S,) keep-mask (first occurrence kept) and the problem message, if any."""
    dup = ids.duplicated(keep="first").to_numpy()
    if not dup.any():
        return ~dup, []
    names = sorted(set(ids[dup]))
    return ~dup, [
        f"{path}: {len(names)} {id_col}(s) appear on more than one row ({_show(names)}); each slide must "
        "have exactly one row: remove the duplicates."
    ]


def read_label_csv(
    path: Path,
    hierarchy: Hierarchy,
    *,
    aliases: dict[str, str] | None = None,
    case_columns: tuple[str, ...] = ("case_id", "patient_id", "PATIENT"),
) -> LabelTable:
    """Read a ``slide_id,label[,case_id|patient_id][,site]`` CSV (CLAM's ``case_id,slide_id,label`` too).

    A STAMP slide table merged with its labels also works: ``FILENAME`` stands for ``slide_id`` (the
    ``.h5`` suffix is dropped) and ``PATIENT`` for ``case_id``.

    Args:
        path: the CSV.
        hierarchy: labels must be names of ``hierarchy.fine`` (after ``aliases``).
        aliases: extra spellings → fine class name (e.g. BRACS ``Type_N`` → ``N``).
        case_columns: columns tried, in order, for patient/case ids.
    """
    path = Path(path)
    df = _read_csv(path, "labels file")
    if "slide_id" not in df.columns and "FILENAME" in df.columns:
        df = df.rename(columns={"FILENAME": "slide_id"})
    missing = [c for c in ("slide_id", "label") if c not in df.columns]
    if missing:
        raise DataError(
            f"labels file {path} lacks column(s) {missing} (has {list(df.columns)}); it needs a header "
            "with slide_id,label and optionally case_id and site."
        )
    if df.empty:
        raise DataError(f"labels file {path} has no rows; add one row per slide.")
    ids = df["slide_id"].map(_strip_suffix)
    keep, problems = _duplicates(ids, path, "slide_id")
    aliases = aliases or {}
    labels = df["label"].map(lambda s: aliases.get(s, s))
    index = {name: i for i, name in enumerate(hierarchy.fine)}
    known = labels.isin(list(index)).to_numpy()
    if not known.all():
        bad = df.loc[~known, "label"]
        problems.append(
            f"{path}: {int((~known).sum())} row(s) have a label outside the hierarchy ({_show(sorted(set(bad)))}; "
            f"slides {_show(list(ids[~known]))}); valid labels: {', '.join(hierarchy.fine)}."
        )
    empty_id = (ids == "").to_numpy()
    if empty_id.any():
        problems.append(f"{path}: {int(empty_id.sum())} row(s) have an empty slide_id; fill or remove them.")
    keep &= known & ~empty_id
    case_col = next((c for c in case_columns if c in df.columns), None)
    cases = df[case_col].where(df[case_col] != "", ids) if case_col else ids
    sites = list(df.loc[keep, "site"]) if "site" in df.columns else None
    no_cases = f"{path} has no case_id/patient_id column: each slide is its own case."
    return LabelTable(
        source=path,
        slide_ids=list(ids[keep]),
        case_ids=list(cases[keep]),
        fine_labels=np.array([index[v] for v in labels[keep]], dtype=np.int64),
        sites=sites,
        problems=problems,
        warnings=[] if case_col else [no_cases],
        dropped=sorted(set(ids[~keep]) - {""}),
    )


def read_panda_csv(path: Path, hierarchy: Hierarchy) -> LabelTable:
    """Read PANDA's ``train.csv``: fine label = ``isup_grade``, site = ``data_provider``.

    Quirks handled: ``negative`` (Radboud) is normalised to ``0+0``; every row's ISUP grade is checked
    against its Gleason score; the known mislabelled slide is dropped with a warning; any other
    mismatch is a problem listing the image ids.
    """
    path = Path(path)
    df = _read_csv(path, "PANDA label file")
    if tuple(df.columns) != PANDA_COLUMNS:
        raise DataError(
            f"PANDA label file {path} has header {','.join(df.columns)}; expected exactly "
            f"{','.join(PANDA_COLUMNS)} (Kaggle's train.csv)."
        )
    if df.empty:
        raise DataError(f"PANDA label file {path} has no rows.")
    ids = df["image_id"]
    keep, problems = _duplicates(ids, path, "image_id")
    warnings: list[str] = []
    gleason = df["gleason_score"].replace({"negative": "0+0"})
    isup = pd.to_numeric(df["isup_grade"], errors="coerce")
    bad_isup = ~isup.isin(range(hierarchy.n_fine)).to_numpy()
    bad_gleason = ~gleason.isin(list(GLEASON_TO_ISUP)).to_numpy()
    bad = bad_isup | bad_gleason
    if bad.any():
        vals = sorted(
            {f"{i}/{g}" for i, g in zip(df["isup_grade"][bad], df["gleason_score"][bad], strict=True)}
        )
        problems.append(
            f"{path}: {int(bad.sum())} row(s) have an isup_grade outside 0..{hierarchy.n_fine - 1} or an unknown "
            f"gleason_score (isup/gleason: {_show(vals)}; image_ids {_show(list(ids[bad]))}); fix those rows."
        )
    expected = gleason.map(GLEASON_TO_ISUP)
    mismatch = (~bad) & (expected.to_numpy(dtype=float, na_value=np.nan) != isup.to_numpy(dtype=float))
    known = mismatch & (ids == PANDA_KNOWN_MISLABELLED).to_numpy()
    if known.any():
        warnings.append(
            f"{path}: dropped {PANDA_KNOWN_MISLABELLED} (known PANDA label error: gleason 4+3 with isup_grade 2)."
        )
    other = mismatch & ~known
    if other.any():
        rows = [
            f"{i} (isup {s}, gleason {g})"
            for i, s, g in zip(ids[other], df["isup_grade"][other], df["gleason_score"][other], strict=True)
        ]
        problems.append(
            f"{path}: {int(other.sum())} row(s) have an isup_grade that contradicts the gleason_score: "
            f"{_show(rows)}; correct the grades or remove those rows."
        )
    keep &= ~bad & ~mismatch
    return LabelTable(
        source=path,
        slide_ids=list(ids[keep]),
        case_ids=list(ids[keep]),  # PANDA has no patient ids
        fine_labels=isup[keep].to_numpy(dtype=np.int64),
        sites=list(df.loc[keep, "data_provider"]),
        problems=problems,
        warnings=warnings,
        dropped=sorted(set(ids[~keep])),
    )
