"""Resolve a file-backed dataset (``panda``, ``bracs``, ``csv``) without reading any feature.

`prepare` finds the labels CSV, the hierarchy and the feature store of ``DataConfig.name`` and joins them by
slide id into `Sources`; the features are read later, once (`benchmark.data.files.pack.build_collection`).
The data directory is ``DataConfig.data_dir`` or the ``BENCHMARK_DATA_DIR`` environment variable;
``DataConfig.labels``, ``.features`` and ``.hierarchy`` override the default file locations inside it.
The registered loaders live in `benchmark.data.files.datasets`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from benchmark.core.config import DataConfig
from benchmark.core.errors import DataError
from benchmark.core.hierarchy import Hierarchy
from benchmark.data.files.labels import read_label_csv, read_panda_csv
from benchmark.data.files.sources import Sources, match_sources
from benchmark.data.files.stores import LAYOUT_HELP, FeatureStore, detect_store

__all__ = [
    "BRACS_HIERARCHY",
    "PANDA_HIERARCHY",
    "data_dir",
    "is_file_dataset",
    "prepare",
    "prepare_bracs",
    "prepare_csv",
    "prepare_panda",
]

PANDA_HIERARCHY = Hierarchy.from_groups(
    {"benign": ["ISUP 0"], "low-grade": ["ISUP 1", "ISUP 2"], "high-grade": ["ISUP 3", "ISUP 4", "ISUP 5"]},
    ordinal=True,
)
BRACS_HIERARCHY = Hierarchy.from_groups(
    {"benign": ["N", "PB", "UDH"], "atypical": ["FEA", "ADH"], "malignant": ["DCIS", "IC"]}
)
# BRACS spells classes Type_N … Type_IC in its tables; accept those and lower case.
_BRACS_ALIASES = {
    v: c for c in BRACS_HIERARCHY.fine for v in (c.lower(), f"Type_{c}", f"type_{c}", f"type_{c.lower()}")
}

_ONE_LINE = {
    "panda": "<data_dir>/train.csv (PANDA) plus " + LAYOUT_HELP,
    "bracs": "<data_dir>/labels.csv (slide_id,label with BRACS subtypes) plus " + LAYOUT_HELP,
    "csv": "<data_dir>/labels.csv (slide_id,label), <data_dir>/hierarchy.toml plus " + LAYOUT_HELP,
}


def data_dir(cfg: DataConfig) -> Path | None:
    """``cfg.data_dir``, else ``$BENCHMARK_DATA_DIR``, else None."""
    d = cfg.data_dir or os.environ.get("BENCHMARK_DATA_DIR")
    return Path(d).expanduser() if d else None


def _no_data(name: str, what: str) -> DataError:
    return DataError(
        f"dataset {name}: {what}; expected {_ONE_LINE[name]} (`benchmark datasets` shows the layout); "
        "to try the suite without data use --dataset panda-sim."
    )


def _file(cfg: DataConfig, name: str, explicit: str | None, default: str, option: str) -> Path:
    """An explicitly given file, or ``<data_dir>/<default>``; missing data dir or file → `DataError`."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise DataError(f"dataset {name}: {option} {path} does not exist; pass an existing file.")
        return path
    root = data_dir(cfg)
    if root is None:
        raise _no_data(name, "no data directory given (pass --data-dir DIR or set BENCHMARK_DATA_DIR)")
    if not root.is_dir():
        raise _no_data(name, f"data directory {root} does not exist")
    path = root / default
    if not path.is_file():
        raise _no_data(name, f"{path} does not exist (or pass {option} FILE)")
    return path


def _store(cfg: DataConfig, name: str) -> FeatureStore:
    if cfg.features:
        return detect_store(Path(cfg.features).expanduser())
    root = data_dir(cfg)
    if root is None or not root.is_dir():
        raise _no_data(name, "no data directory with features (pass --data-dir DIR or --features DIR)")
    return detect_store(root)


def prepare_panda(cfg: DataConfig) -> Sources:
    labels = _file(cfg, "panda", cfg.labels, "train.csv", "--labels")
    table = read_panda_csv(labels, PANDA_HIERARCHY)
    return match_sources(cfg.name, PANDA_HIERARCHY, table, _store(cfg, "panda"))


def prepare_bracs(cfg: DataConfig) -> Sources:
    labels = _file(cfg, "bracs", cfg.labels, "labels.csv", "--labels")
    table = read_label_csv(labels, BRACS_HIERARCHY, aliases=_BRACS_ALIASES)
    return match_sources(cfg.name, BRACS_HIERARCHY, table, _store(cfg, "bracs"))


def prepare_csv(cfg: DataConfig) -> Sources:
    labels = _file(cfg, "csv", cfg.labels, "labels.csv", "--labels")
    hierarchy = Hierarchy.from_toml(_file(cfg, "csv", cfg.hierarchy, "hierarchy.toml", "--hierarchy"))
    table = read_label_csv(labels, hierarchy)
    return match_sources(cfg.name, hierarchy, table, _store(cfg, "csv"))


_PREPARERS: dict[str, Callable[[DataConfig], Sources]] = {
    "panda": prepare_panda,
    "bracs": prepare_bracs,
    "csv": prepare_csv,
}


def is_file_dataset(name: str) -> bool:
    """Whether ``name`` is a dataset read from the user's files (so `prepare` applies)."""
    return name in _PREPARERS


def prepare(cfg: DataConfig) -> Sources:
    """Resolve labels, hierarchy and feature files of ``cfg.name`` without reading any feature.

    Raises:
        DataError: missing data dir / label file / feature store, unreadable label file, or
            ``cfg.name`` is not a file-backed dataset. Row-level problems are in ``Sources.problems``.
    """
    if cfg.name not in _PREPARERS:
        raise DataError(
            f"dataset {cfg.name!r} is not read from files (file-backed datasets: {', '.join(_PREPARERS)}); "
            "simulated datasets need no packing."
        )
    return _PREPARERS[cfg.name](cfg)
