"""``benchmark data check``: validate every slide of a dataset and summarise it, without stopping early.

File-backed datasets (``panda``, ``bracs``, ``csv``) are checked file by file: label problems,
missing and extra feature files, unreadable files, inconsistent dims, NaN/Inf values and empty bags
are all collected. An up-to-date pack cache (validated when it was written) is used instead of
re-reading the sources. Simulated datasets are loaded and summarised with `check_collection`.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.core.config import DataConfig
from benchmark.core.errors import BenchmarkError, DataError
from benchmark.core.hierarchy import Hierarchy
from benchmark.data.bags import BagCollection
from benchmark.data.files import stores
from benchmark.data.files.pack import fresh_pack_lengths
from benchmark.data.files.prepare import is_file_dataset, prepare
from benchmark.data.files.sources import Sources
from benchmark.data.loading import load_dataset

__all__ = ["CheckReport", "check_collection", "check_dataset"]

log = logging.getLogger(__name__)
_SHOW = 5


@dataclass
class CheckReport:
    """Outcome of a dataset check.

    Attributes:
        dataset: the dataset name.
        problems: one line per problem that would stop loading (empty when the dataset is usable).
        warnings: notes that do not stop loading (extra feature files, dropped known-bad rows, ...).
        counts: ``{"fine": Series, "coarse": Series}``, slides per class (every class, zeros included).
        bag_sizes: instances per bag: ``min``, ``median``, ``mean``, ``max`` and ``total``
            (empty when no bag could be read).
        info: layout, feature directory, label file, dim, number of slides.
        missing: every labelled slide without a feature file.
        extra: every feature file's slide id without a label row.
    """

    dataset: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, pd.Series] = field(default_factory=dict)
    bag_sizes: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``benchmark data check --format json``)."""
        return {
            "dataset": self.dataset,
            "ok": self.ok,
            "problems": list(self.problems),
            "warnings": list(self.warnings),
            "counts": {level: {str(k): int(v) for k, v in s.items()} for level, s in self.counts.items()},
            "bag_sizes": dict(self.bag_sizes),
            "info": dict(self.info),
            "missing": list(self.missing),
            "extra": list(self.extra),
        }


def _show(items: list[str]) -> str:
    return ", ".join(items[:_SHOW]) + (f" … (+{len(items) - _SHOW} more)" if len(items) > _SHOW else "")


def _counts(hierarchy: Hierarchy, fine_labels: np.ndarray) -> dict[str, pd.Series]:
    fine = np.bincount(np.asarray(fine_labels, dtype=np.int64), minlength=hierarchy.n_fine)
    coarse = np.bincount(hierarchy.coarse_of(fine_labels).astype(np.int64), minlength=hierarchy.n_coarse)
    return {
        "fine": pd.Series(fine, index=list(hierarchy.fine), name="fine", dtype="int64"),
        "coarse": pd.Series(coarse, index=list(hierarchy.coarse), name="coarse", dtype="int64"),
    }


def _sizes(lengths: np.ndarray) -> dict[str, float]:
    if len(lengths) == 0:
        return {}
    return {
        "min": float(lengths.min()),
        "median": float(np.median(lengths)),
        "mean": float(lengths.mean()),
        "max": float(lengths.max()),
        "total": float(lengths.sum()),
    }


def check_collection(bags: BagCollection) -> CheckReport:
    """Class counts and bag-size statistics of a loaded collection, plus a NaN/Inf scan of its features."""
    report = CheckReport(
        bags.name, counts=_counts(bags.hierarchy, bags.fine_labels), bag_sizes=_sizes(bags.lengths)
    )
    bad = [bags.slide_ids[i] for i in range(len(bags)) if not np.isfinite(bags.bag(i)).all()]
    if bad:
        report.problems.append(
            f"dataset {bags.name}: {len(bad)} bag(s) contain NaN/Inf features ({_show(bad)})."
        )
    report.info = {"n_slides": len(bags), "dim": bags.dim, **(bags.info or {})}
    return report


def _scan_files(src: Sources) -> tuple[list[str], np.ndarray, int | None]:
    """Read every feature file once; (problems, (S,) lengths with -1 for unreadable, majority dim)."""
    unreadable: list[str] = []
    empty: list[str] = []
    nonfinite: list[str] = []
    dims: dict[Path, int] = {}
    lengths = np.full(len(src.paths), -1, dtype=np.int64)
    for i, path in enumerate(src.paths):
        try:
            x = stores.read_features(path)
        except DataError as exc:
            unreadable.append(str(exc))
            continue
        lengths[i] = len(x)
        dims[path] = x.shape[1]
        if len(x) == 0:
            empty.append(str(path))
        n_bad = int((~np.isfinite(x)).sum())
        if n_bad:
            nonfinite.append(f"{path} ({n_bad})")
    problems = unreadable[:_SHOW]
    if len(unreadable) > _SHOW:
        problems.append(f"… and {len(unreadable) - _SHOW} more unreadable feature files.")
    dim = Counter(dims.values()).most_common(1)[0][0] if dims else None
    odd = [f"{p} (dim {d})" for p, d in dims.items() if d != dim]
    if odd:
        problems.append(
            f"{len(odd)} feature file(s) differ from the majority dim {dim}: {_show(odd)}; all slides must come "
            "from one encoder: re-extract them or point --features at one encoder's directory."
        )
    if empty:
        problems.append(
            f"{len(empty)} feature file(s) have 0 instances (empty bags): {_show(empty)}; remove those slides "
            "from the label file or re-extract them."
        )
    if nonfinite:
        problems.append(
            f"{len(nonfinite)} feature file(s) contain NaN/Inf values (count): {_show(nonfinite)}; re-extract "
            "them or remove those slides from the label file."
        )
    return problems, lengths, dim


def check_dataset(cfg: DataConfig) -> CheckReport:
    """Validate every slide of ``cfg.name`` and summarise labels and bag sizes; never raises `BenchmarkError`.

    Returns:
        A `CheckReport`; ``ok`` is False when loading would fail.
    """
    if not is_file_dataset(cfg.name):
        try:
            return check_collection(load_dataset(cfg))
        except BenchmarkError as exc:
            return CheckReport(cfg.name, problems=[str(exc)])
    try:
        src = prepare(cfg)
    except BenchmarkError as exc:
        return CheckReport(cfg.name, problems=[str(exc)])
    report = CheckReport(
        cfg.name,
        problems=list(src.problems),
        warnings=list(src.warnings),
        missing=src.missing,
        extra=src.extra,
    )
    cached = fresh_pack_lengths(src, cfg)
    if cached is not None:
        lengths, dim = cached
        log.info("using the up-to-date pack cache for %s (validated when written)", cfg.name)
    else:
        file_problems, lengths, dim = _scan_files(src)
        report.problems.extend(file_problems)
    report.counts = _counts(src.hierarchy, src.table.fine_labels)
    report.bag_sizes = _sizes(lengths[lengths >= 0])
    report.info = {
        "n_slides": len(src.table.slide_ids),
        "n_missing": len(src.missing),
        "n_extra": len(src.extra),
        "dim": dim,
        "layout": src.store.layout,
        "features_dir": str(src.store.directory),
        "labels": str(src.table.source),
        "pack_cache": cached is not None,
    }
    return report
