"""What a file-backed dataset resolves to before any feature is read: labels joined to feature files, and
the identity of those files (per-file size/mtime, the dataset fingerprint)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.core.errors import DataError
from benchmark.core.hierarchy import Hierarchy
from benchmark.data.files.labels import LabelTable
from benchmark.data.files.stores import FeatureStore

__all__ = ["Sources", "fingerprint", "match_sources", "source_stats"]

log = logging.getLogger(__name__)
_SHOW = 5


@dataclass
class Sources:
    """A labelled dataset on disk.

    Attributes:
        name: dataset registry name.
        hierarchy: the fine → coarse tree.
        table: labelled slides that have a feature file (rows without one are in ``missing``).
        store: where the features are.
        paths: (S,) feature file of each row of ``table``.
        missing: slide ids with a label row but no feature file.
        extra: slide ids with a feature file but no label row (a warning, not a problem).
        problems: everything that makes the dataset unusable (label problems + missing files).
        warnings: notes that do not stop loading.
    """

    name: str
    hierarchy: Hierarchy
    table: LabelTable
    store: FeatureStore
    paths: list[Path]
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def raise_problems(self) -> None:
        """Raise the first problem as a one-line `DataError` (mentioning how many more exist)."""
        if not self.problems:
            return
        more = len(self.problems) - 1
        tail = f" ({more} more problem(s); run `benchmark data check` to list them all)" if more else ""
        raise DataError(self.problems[0] + tail)


def _show(ids: list[str]) -> str:
    return ", ".join(ids[:_SHOW]) + (f" … (+{len(ids) - _SHOW} more)" if len(ids) > _SHOW else "")


def match_sources(name: str, hierarchy: Hierarchy, table: LabelTable, store: FeatureStore) -> Sources:
    """Join label rows to feature files by slide id.

    Label rows without a feature file are a problem (the dataset would silently shrink otherwise);
    feature files without a label row are logged as a warning and ignored.
    """
    files = store.files()
    has = np.array([s in files for s in table.slide_ids], dtype=bool)
    missing = [s for s, ok in zip(table.slide_ids, has, strict=True) if not ok]
    labelled = set(table.slide_ids) | set(table.dropped)
    extra = [s for s in files if s not in labelled]
    problems = list(table.problems)
    warnings = list(table.warnings)
    if missing:
        problems.append(
            f"{len(missing)} of {len(table.slide_ids)} labelled slides in {table.source} have no feature file "
            f"{store.directory}/<slide>{store.suffix} ({_show(missing)}); extract features for them or "
            f"remove their rows from {table.source.name}."
        )
    if extra:
        warnings.append(
            f"{len(extra)} feature file(s) in {store.directory} have no row in {table.source.name} and are "
            f"ignored ({_show(extra)})."
        )
    if not has.any() and not missing:
        problems.append(f"{table.source} has no usable rows.")
    for w in warnings:
        log.warning("%s", w)
    kept = table.subset(has)
    return Sources(
        name=name,
        hierarchy=hierarchy,
        table=kept,
        store=store,
        paths=[files[s] for s in kept.slide_ids],
        missing=missing,
        extra=extra,
        problems=problems,
        warnings=warnings,
    )


def source_stats(paths: list[Path]) -> list[dict[str, Any]]:
    """Per file: absolute path, size and mtime_ns (what decides whether a pack is stale)."""
    out = []
    for p in paths:
        st = os.stat(p)
        out.append({"path": str(Path(p).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return out


def fingerprint(src: Sources, stats: list[dict[str, Any]]) -> str:
    """sha256 of a JSON document with the hierarchy and, per slide in order, (slide id, case id, fine label
    name, site, feature file name, file size, file mtime_ns).

    It changes whenever a label or a feature file changes (including a mere ``touch``) and does not depend on
    where the data directory is mounted. ``stats``: `source_stats` of ``src.paths``.
    """
    t, h = src.table, src.hierarchy
    sites = t.sites if t.sites is not None else [None] * len(t.slide_ids)
    rows = [
        [sid, case, h.fine[lab], site, Path(st["path"]).name, st["size"], st["mtime_ns"]]
        for sid, case, lab, site, st in zip(t.slide_ids, t.case_ids, t.fine_labels, sites, stats, strict=True)
    ]
    doc = json.dumps({"hierarchy": h.to_dict(), "slides": rows}, sort_keys=True, default=str)
    return hashlib.sha256(doc.encode()).hexdigest()
