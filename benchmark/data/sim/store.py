"""How a simulated dataset is written to and read from its cache directory (`benchmark.data.sim.datasets` decides
which datasets exist and where their caches live).

A cache directory holds ``features.npy`` (T, D) float16, ``offsets.npy`` (S + 1,), ``patterns.npy`` (T,) int8
and ``meta.json`` (written last, so a directory without it is incomplete).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.core.errors import DataError
from benchmark.core.hierarchy import Hierarchy
from benchmark.data.bags import BagCollection
from benchmark.data.sim.core import FeatureSpace, SlidePlan, write_features
from benchmark.data.sim.embed import EmbeddingModel

__all__ = ["GENERATOR_VERSION", "SimSpec", "read_dataset", "spec_digest", "write_dataset"]

logger = logging.getLogger(__name__)

# Bump whenever a change alters generated arrays for unchanged parameters (invalidates caches).
GENERATOR_VERSION = "1"


@dataclasses.dataclass(frozen=True)
class SimSpec:
    """How one simulated dataset is planned, drawn and named."""

    name: str
    defaults: Callable[[], Any]  # the scale-1 parameter dataclass
    hierarchy: Hierarchy
    patterns: tuple[str, ...]
    background: tuple[int, ...]  # pattern indices lesion instances may be mixed with
    plan: Callable[[Any, int], SlidePlan]
    space: Callable[[Any, int], FeatureSpace]
    slide_id: Callable[[int], str]
    case_id: Callable[[int], str]
    site_names: tuple[str, ...] | None
    embedding: EmbeddingModel | None  # the v2 feature model; None = v1 (isotropic noise, the -iso sets)


def spec_digest(spec: SimSpec, params: Any, seed: int) -> str:
    payload = {
        "dataset": spec.name,
        "version": GENERATOR_VERSION,
        "seed": seed,
        "params": dataclasses.asdict(params),
    }
    if spec.embedding is not None:
        payload["embedding"] = dataclasses.asdict(spec.embedding)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _info(spec: SimSpec, params: Any, seed: int, labels: np.ndarray, n_inst: int) -> dict:
    """Flat, JSON-friendly provenance: generator params, seed, version and the realised class shares.

    Only what the digest covers (plus counts derived from it), so equal fingerprints mean equal info.
    """
    info: dict[str, Any] = {
        "generator": spec.name,
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "n_instances": n_inst,
    }
    for key, value in dataclasses.asdict(params).items():
        info[key] = json.dumps(list(value)) if isinstance(value, list | tuple) else value
    info["feature_model"] = "iso" if spec.embedding is None else "v2"
    if spec.embedding is not None:
        info.update({f"embedding.{k}": v for k, v in dataclasses.asdict(spec.embedding).items()})
    counts = np.bincount(labels, minlength=spec.hierarchy.n_fine)
    info["fine_counts"] = json.dumps(counts.tolist())
    info["fine_shares"] = json.dumps([round(float(c) / len(labels), 4) for c in counts])
    return info


def write_dataset(spec: SimSpec, params: Any, seed: int, scale: float, out: Path) -> None:
    """Draw the dataset into ``out`` (an empty directory): features, offsets, patterns, meta.json last."""
    plan = spec.plan(params, seed)
    n_inst = int(plan.lengths.sum())
    need = n_inst * params.dim * 2
    free = shutil.disk_usage(out).free
    if need > 0.95 * free:
        raise DataError(
            f"{spec.name} at --scale {scale} needs {need / 1e9:.1f} GB in {out.parent}, "
            f"only {free / 1e9:.1f} GB free; lower --scale or point --cache-dir elsewhere."
        )
    logger.info(
        "generating %s: %d slides, %d instances, D=%d (%.2f GB)",
        spec.name,
        len(plan.labels),
        n_inst,
        params.dim,
        need / 1e9,
    )
    offsets = write_features(
        out, spec.space(params, seed), plan, seed, background=spec.background, embedding=spec.embedding
    )
    np.save(out / "offsets.npy", offsets)
    meta = {
        "dataset": spec.name,
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "scale": scale,
        "digest": spec_digest(spec, params, seed),
        "params": dataclasses.asdict(params),
        "embedding": None if spec.embedding is None else dataclasses.asdict(spec.embedding),
        "patterns": list(spec.patterns),
        "slide_ids": [spec.slide_id(i) for i in range(len(plan.labels))],
        "case_ids": [spec.case_id(int(c)) for c in plan.cases],
        "fine_labels": plan.labels.tolist(),
        "sites": None if spec.site_names is None else [spec.site_names[s] for s in plan.sites],
        "n_label_noise": int(np.sum(plan.labels != plan.clean_labels)),
        "info": _info(spec, params, seed, plan.labels, n_inst),
    }
    (out / "meta.json").write_text(json.dumps(meta), encoding="utf-8")


def read_dataset(spec: SimSpec, path: Path, digest: str) -> BagCollection:
    """Open a finished cache directory; raises (DataError/ValueError/OSError/KeyError) when it is unusable."""
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    if meta.get("digest") != digest or meta.get("generator_version") != GENERATOR_VERSION:
        raise DataError(f"{path}: meta.json does not match the requested generator parameters")
    features = np.load(path / "features.npy", mmap_mode="r")
    offsets = np.load(path / "offsets.npy")
    if features.ndim != 2 or features.shape[1] != meta["params"]["dim"] or offsets[-1] != features.shape[0]:
        raise DataError(f"{path}: features.npy {features.shape} does not match offsets/meta")
    return BagCollection(
        name=spec.name,
        slide_ids=meta["slide_ids"],
        case_ids=meta["case_ids"],
        fine_labels=np.asarray(meta["fine_labels"], dtype=np.int64),
        features=features,
        offsets=offsets,
        hierarchy=spec.hierarchy,
        sites=meta["sites"],
        fingerprint=digest,
        info=meta["info"],
    )
