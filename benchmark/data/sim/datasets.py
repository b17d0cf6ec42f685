"""Simulated datasets ``panda-sim`` (the embedded default) and ``bracs-sim``, with v2 features shaped like real
patch embeddings, and their stress sets ``panda-sim-iso`` / ``bracs-sim-iso`` (the v1 isotropic-noise
features of the same slides): generated once, cached on disk.

All four are deterministic functions of (generator version, parameters, seed). The first load writes
``<cache_dir>/sim/<name>-<digest>/`` with ``features.npy`` (T, D) float16, ``offsets.npy`` (S + 1,),
``patterns.npy`` (T,) int8 instance pattern ids and ``meta.json``; later loads memory-map it. The
directory is built under a temporary name and renamed into place, so an interrupted run never leaves
a half-written cache; an unreadable cache is deleted and regenerated. The generative models and
their calibration are documented in docs/datasets.md.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.core.config import DataConfig
from benchmark.core.errors import ConfigError, DataError
from benchmark.core.hierarchy import Hierarchy
from benchmark.data.bags import BagCollection
from benchmark.data.loading import DatasetInfo, register_dataset
from benchmark.data.sim.bracs import BRACS_PATTERNS, BracsSimParams, bracs_label, bracs_plan, bracs_space
from benchmark.data.sim.embed import EmbeddingModel
from benchmark.data.sim.panda import (
    PANDA_PATTERNS,
    PandaSimParams,
    gleason_score,
    isup_grade,
    panda_plan,
    panda_space,
)
from benchmark.data.sim.store import GENERATOR_VERSION, SimSpec, read_dataset, spec_digest, write_dataset

__all__ = [
    "BRACS_HIERARCHY",
    "GENERATOR_VERSION",
    "PANDA_HIERARCHY",
    "BracsSimParams",
    "PandaSimParams",
    "bracs_label",
    "generate_simulated",
    "instance_patterns",
    "is_simulated",
    "gleason_score",
    "isup_grade",
    "load_bracs_sim",
    "load_panda_sim",
    "sim_cache_dir",
]

logger = logging.getLogger(__name__)

PANDA_HIERARCHY = Hierarchy.from_groups(
    {"benign": ["ISUP 0"], "low-grade": ["ISUP 1", "ISUP 2"], "high-grade": ["ISUP 3", "ISUP 4", "ISUP 5"]},
    ordinal=True,
)
BRACS_HIERARCHY = Hierarchy.from_groups(
    {"benign": ["N", "PB", "UDH"], "atypical": ["FEA", "ADH"], "malignant": ["DCIS", "IC"]},
    ordinal=False,
)

_MIN_SLIDES_PER_CLASS = 3  # below this a 5-fold split cannot even hold every class


def sim_cache_dir(cfg: DataConfig) -> Path:
    """Path of the cache directory ``cfg`` resolves to (exists only after the first load)."""
    spec, params = _SPECS[cfg.name], _params_for(cfg)
    return Path(cfg.cache_dir) / "sim" / f"{spec.name}-{spec_digest(spec, params, cfg.seed)}"


def _params_for(cfg: DataConfig) -> Any:
    spec = _SPECS.get(cfg.name)
    if spec is None:
        raise ConfigError(f"data.name={cfg.name!r} is not a simulated dataset; use one of {sorted(_SPECS)}.")
    base = spec.defaults()
    params = base.scaled(cfg.scale)
    need = _MIN_SLIDES_PER_CLASS * spec.hierarchy.n_fine
    if params.n_slides < need:
        raise ConfigError(
            f"data.scale={cfg.scale} gives {params.n_slides} slides for {cfg.name}, fewer than the {need} needed "
            f"({_MIN_SLIDES_PER_CLASS} per class); use --scale ≥ {need / base.n_slides:.3g}."
        )
    return params


def generate_simulated(
    name: str, params: Any, seed: int, out_dir: str | Path, *, embedding: EmbeddingModel | None = None
) -> BagCollection:
    """Generate ``name`` with explicit (e.g. non-default) generator params into ``out_dir``, bypassing the cache.

    Used by scripts/calibrate_sim.py to try parameter sets; the registry loaders use the defaults.

    Args:
        name: a simulated dataset ("panda-sim", "panda-sim-iso", "bracs-sim", "bracs-sim-iso").
        params: a `PandaSimParams` / `BracsSimParams` (use ``.scaled(scale)`` for other sizes).
        seed: generator seed.
        out_dir: an empty or missing directory; it receives the same files as a cache entry.
        embedding: a v2 feature model replacing the dataset's own (only for the v2 datasets).
    """
    spec = _SPECS[name]
    if embedding is not None:
        if spec.embedding is None:
            raise ConfigError(
                f"{name} uses the v1 (isotropic) feature model; pass embedding= only for v2 datasets."
            )
        spec = dataclasses.replace(spec, embedding=embedding)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_dataset(spec, params, seed, 1.0, out)
    return read_dataset(spec, out, spec_digest(spec, params, seed))


def _load(cfg: DataConfig) -> BagCollection:
    spec, params = _SPECS[cfg.name], _params_for(cfg)
    digest = spec_digest(spec, params, cfg.seed)
    final = sim_cache_dir(cfg)
    if final.exists():
        try:
            return read_dataset(spec, final, digest)
        except (DataError, ValueError, OSError, KeyError, TypeError) as exc:
            logger.warning("cache %s is unusable (%s); regenerating", final, exc)
            shutil.rmtree(final, ignore_errors=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        write_dataset(spec, params, cfg.seed, cfg.scale, tmp)
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished the same dataset first: keep theirs
            logger.info("cache %s appeared concurrently; using it", final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return read_dataset(spec, final, digest)


# The v2 feature models (docs/datasets.md, "Feature model v2"): calibrated on the statistics of real patch
# embeddings and on gated ABMIL, never on HMIL.
PANDA_EMBEDDING = EmbeddingModel(morph_sd=2.5, morph_alpha=0.8, bias=-0.5, output_scale=2.0)
BRACS_EMBEDDING = EmbeddingModel(morph_sd=4.0, morph_alpha=1.4, bias=-0.5, output_scale=2.0)

_PANDA = SimSpec(
    name="panda-sim",
    defaults=PandaSimParams,
    hierarchy=PANDA_HIERARCHY,
    patterns=PANDA_PATTERNS,
    background=(0, 1, 2),
    plan=panda_plan,
    space=panda_space,
    slide_id=lambda i: f"panda-sim-{i:05d}",
    case_id=lambda c: f"panda-sim-{c:05d}",  # PANDA has no patient ids: one case per slide
    site_names=PandaSimParams().providers,
    embedding=PANDA_EMBEDDING,
)
_BRACS = SimSpec(
    name="bracs-sim",
    defaults=BracsSimParams,
    hierarchy=BRACS_HIERARCHY,
    patterns=BRACS_PATTERNS,
    background=(0, 1, 2),
    plan=bracs_plan,
    space=bracs_space,
    slide_id=lambda i: f"bracs-sim-{i:04d}",
    case_id=lambda c: f"patient-{c:04d}",
    site_names=None,
    embedding=BRACS_EMBEDDING,
)
# The v1 generators, kept as documented stress sets: the same slides, labels and ids (so the same folds),
# features with isotropic σ = 1 noise in every dimension.
_PANDA_ISO = dataclasses.replace(_PANDA, name="panda-sim-iso", embedding=None)
_BRACS_ISO = dataclasses.replace(_BRACS, name="bracs-sim-iso", embedding=None)
_SPECS = {s.name: s for s in (_PANDA, _BRACS, _PANDA_ISO, _BRACS_ISO)}


def is_simulated(name: str) -> bool:
    """Whether ``name`` is one of this module's generated datasets."""
    return name in _SPECS


def instance_patterns(cfg: DataConfig) -> np.ndarray:
    """(T,) int8 ground-truth tissue pattern of every instance of a simulated dataset (loads it first)."""
    _load(cfg)
    return np.load(sim_cache_dir(cfg) / "patterns.npy")


def _loader(name: str) -> Callable[[DataConfig], BagCollection]:
    def load(cfg: DataConfig) -> BagCollection:
        """Load (generating and caching on first use) the simulated dataset for ``cfg.seed`` and ``cfg.scale``."""
        return _load(dataclasses.replace(cfg, name=name))

    return load


_PANDA_DESC = "Gleason-pattern prototypes, 2 providers, ISUP 0-5 → 3 groups"
_BRACS_DESC = "7 lesion subtypes → 3 groups, label = worst lesion, ~2.9 slides per patient"
_PANDA_SIZE = (
    "240 slides, 2,936 instances (seed 0), D=1024 at scale 1; --scale 44.233 gives PANDA's 10,616 slides"
)
_BRACS_SIZE = "547 slides from 189 patients, 15,347 instances (seed 0), D=1024 at scale 1"
for _name, _desc, _hier, _size in (
    (
        "panda-sim",
        f"Simulated PANDA (default): {_PANDA_DESC}; features shaped like real patch embeddings (v2).",
        PANDA_HIERARCHY,
        _PANDA_SIZE,
    ),
    ("bracs-sim", f"Simulated BRACS: {_BRACS_DESC}; v2 features.", BRACS_HIERARCHY, _BRACS_SIZE),
    (
        "panda-sim-iso",
        "Stress set: panda-sim's slides and labels with v1 features (isotropic noise, the tissue "
        "pattern ≈1 % of the variance).",
        PANDA_HIERARCHY,
        _PANDA_SIZE,
    ),
    (
        "bracs-sim-iso",
        "Stress set: bracs-sim's slides and labels with v1 features (isotropic noise).",
        BRACS_HIERARCHY,
        _BRACS_SIZE,
    ),
):
    register_dataset(
        _name, DatasetInfo(description=_desc, hierarchy=_hier, size=_size, needs_data_dir=False)
    )(_loader(_name))

load_panda_sim = _loader("panda-sim")
load_bracs_sim = _loader("bracs-sim")
