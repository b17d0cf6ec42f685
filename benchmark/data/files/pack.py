"""Build a `BagCollection` from feature files: preload into RAM, or a packed memory-mapped cache.

Every source file is read exactly once. Features are held in ``DataConfig.feature_dtype``'s precision
(`benchmark.data.memory`: "source" keeps float16 files float16, else float32). The RAM budget is
min(``DataConfig.preload_max_gb``, half of the available RAM) (`benchmark.data.memory.ram_budget`):

1. A valid pack cache of that dtype exists → load it (into RAM if it fits the budget, else memory-mapped).
2. Otherwise read the files' headers first (h5 metadata, a memory-mapped ``torch.load`` for ``.pt``: exact
   shapes without reading the data). If the features fit the budget and no pack exists for this dataset,
   allocate the (T, D) array once and copy each file into its slice (peak ≈ the array + one file). If they
   do not fit, or a stale pack exists (the user asked for one with ``benchmark data pack``), stream the
   files into a new pack and memory-map it; one log line says why. A legacy ``.pt`` whose shape needs a
   full read is estimated from its file size, and the set spills to a pack mid-way if it outgrows the budget.

A pack lives in ``<cache_dir>/packs/<name>-<key>/`` (key = hash of dataset name, label file and
feature directory) and holds ``features.npy`` (T, D) float32 or float16, ``offsets.npy`` (S + 1,) int64 and
``index.json`` (slide ids, every source file's path/size/mtime_ns, dim, dtype and source dtype, layout,
sha256 of the packed features). It is stale when the slide list, any source file's size or mtime, or the
requested dtype changes, and is then rebuilt. Packs are written to a temporary directory and renamed into
place (see `packfile`).

``BagCollection.fingerprint`` is `benchmark.data.files.sources.fingerprint`: the same whether the features
were preloaded or packed (and in either precision: the dtype is recorded in ``info``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.core.config import DataConfig
from benchmark.data.bags import BagCollection
from benchmark.data.files import packfile, stores
from benchmark.data.files.packfile import PackBuilder, Sink
from benchmark.data.files.prepare import prepare
from benchmark.data.files.sources import Sources, fingerprint, source_stats
from benchmark.data.memory import RamBudget, ram_budget, target_dtype

__all__ = [
    "INDEX_VERSION",
    "build_collection",
    "fresh_pack_lengths",
    "pack_dataset",
    "pack_dir",
]

log = logging.getLogger(__name__)
INDEX_VERSION = 2  # 2: dtype and source_dtype recorded (float16 packs)
_GIB = 2**30


def pack_dir(cfg: DataConfig, src: Sources) -> Path:
    """``<cache_dir>/packs/<name>-<key>``; the key hashes dataset, label file and feature directory."""
    ident = f"{src.name}|{src.table.source.resolve()}|{src.store.directory.resolve()}|{src.store.suffix}"
    key = hashlib.sha256(ident.encode()).hexdigest()[:12]
    return Path(cfg.cache_dir) / "packs" / f"{src.name}-{key}"


# ---------------------------------------------------------------------------------------- reading
def _read(
    src: Sources, stats: list[dict[str, Any]], target: Path, budget: RamBudget | None, want: str
) -> dict:
    """Read every source once; returns RAM features or commits a pack (then ``pack`` is its path).

    ``budget`` None = always pack; ``want`` = ``DataConfig.feature_dtype``.
    """
    found = packfile.scan(src.paths)
    source = np.dtype(np.float16 if found.all_fp16 else np.float32)
    dtype = target_dtype(want, source)
    need = found.nbytes(dtype)
    limit = None if budget is None else budget.nbytes
    if budget is not None and need > budget.nbytes:
        log.info("%s", budget.explain(need, dtype, f"packing to {target} and memory-mapping it"))
        limit = None
    with PackBuilder(target) as builder:
        sink = Sink(limit, builder, found.rows, dtype)
        offsets = np.zeros(len(src.paths) + 1, dtype=np.int64)
        ref: tuple[int, Path] | None = None
        for i, path in enumerate(src.paths):
            x = stores.checked_bag(stores.read_features(path, dtype), path, ref, found.file_rows[i])
            ref = ref or (x.shape[1], path)
            sink.add(x)
            offsets[i + 1] = offsets[i] + len(x)
        if sink.writer is None:
            log.info("preloaded %d slides (%.2f GiB, %s) into RAM", len(src.paths), sink.nbytes / _GIB, dtype)
            return {"features": sink.ram_features(), "offsets": offsets}
        sink.writer.close()
        builder.save_array("offsets.npy", offsets)
        index = {
            "version": INDEX_VERSION,
            "name": src.name,
            "layout": src.store.layout,
            "features_dir": str(src.store.directory.resolve()),
            "labels": str(src.table.source.resolve()),
            "dim": ref[0] if ref else 0,
            "dtype": dtype.name,
            "source_dtype": source.name,
            "n_instances": int(offsets[-1]),
            "slide_ids": list(src.table.slide_ids),
            "sources": stats,
            "content_sha256": sink.writer.sha256.hexdigest(),
        }
        builder.save_text("index.json", json.dumps(index, indent=1))
        done = builder.commit()
        log.info("packed %d slides (%.2f GiB, %s) into %s", len(src.paths), sink.nbytes / _GIB, dtype, done)
        return {"pack": done}


# ---------------------------------------------------------------------------------------- pack cache
def _stale_reason(
    target: Path, src: Sources, stats: list[dict[str, Any]], want: str | None = None
) -> str | None:
    """Why the pack at ``target`` cannot be used for these sources (None = usable). Raises on damage.

    ``want``: the requested ``DataConfig.feature_dtype`` (None = any dtype will do, e.g. for bag lengths).
    """
    index = json.loads((target / "index.json").read_text(encoding="utf-8"))
    if index.get("version") != INDEX_VERSION:
        return f"index version {index.get('version')} != {INDEX_VERSION}"
    if want is not None:
        dtype = target_dtype(want, np.dtype(index["source_dtype"]))
        if index["dtype"] != dtype.name:
            return f"it holds {index['dtype']} features, data.feature_dtype={want} asks for {dtype.name}"
    if index.get("slide_ids") != list(src.table.slide_ids):
        return "the labelled slide list changed"
    if index.get("layout") != src.store.layout:
        return "the feature layout changed"
    old = {s["path"]: (s["size"], s["mtime_ns"]) for s in index.get("sources", [])}
    changed = [s["path"] for s in stats if old.get(s["path"]) != (s["size"], s["mtime_ns"])]
    if changed or len(old) != len(stats):
        return f"{len(changed)} source file(s) changed (e.g. {changed[0] if changed else '?'})"
    return None


def _open_pack(
    target: Path, budget: RamBudget, announce: bool = True
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Load a pack; into RAM if it fits ``budget``, else memory-mapped (logged when ``announce``). Raises on
    damage."""
    index = json.loads((target / "index.json").read_text(encoding="utf-8"))
    offsets = np.load(target / "offsets.npy")
    features = np.load(target / "features.npy", mmap_mode="r")
    n, dim = int(index["n_instances"]), int(index["dim"])
    if (
        features.shape != (n, dim)
        or features.dtype != np.dtype(index["dtype"])
        or offsets.shape != (len(index["slide_ids"]) + 1,)
    ):
        raise ValueError(
            f"shapes do not match index.json (features {features.shape}, offsets {offsets.shape})"
        )
    if int(offsets[-1]) != n:
        raise ValueError("offsets do not cover the features")
    if features.nbytes <= budget.nbytes:
        features = np.array(features)  # one sequential read of the pack, then plain RAM
    elif announce:
        log.info("%s", budget.explain(features.nbytes, features.dtype, f"memory-mapping the pack {target}"))
    return features, offsets, index


def fresh_pack_lengths(src: Sources, cfg: DataConfig) -> tuple[np.ndarray, int] | None:
    """(S,) bag sizes and dim from an up-to-date pack of ``src`` (validated when written), else None."""
    target = pack_dir(cfg, src)
    if not target.exists():
        return None
    try:
        if _stale_reason(target, src, source_stats(src.paths)) is not None:
            return None
        index = json.loads((target / "index.json").read_text(encoding="utf-8"))
        return np.diff(np.load(target / "offsets.npy")), int(index["dim"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _discard(target: Path, why: str) -> None:
    log.warning("pack cache %s is unusable (%s); discarding and rebuilding it", target, why)
    shutil.rmtree(target, ignore_errors=True)


def _usable_pack(
    target: Path, src: Sources, stats: list[dict[str, Any]], budget: RamBudget, want: str
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]] | None:
    """The pack at ``target`` opened when it is up to date, else None (stale: logged; damaged: discarded)."""
    try:
        reason = _stale_reason(target, src, stats, want)
        if reason is None:
            return _open_pack(target, budget)
        log.info("pack cache %s is stale (%s); rebuilding it", target, reason)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _discard(target, f"{type(exc).__name__}: {exc}")
    return None


def _collection_info(
    src: Sources, target: Path, features: np.ndarray, index: dict[str, Any] | None
) -> dict[str, Any]:
    """``BagCollection.info``: where the features came from and how they are held (``index``: the pack's)."""
    info: dict[str, Any] = {
        "layout": src.store.layout,
        "features_dir": str(src.store.directory),
        "labels": str(src.table.source),
        "encoder": src.store.encoder or "",
    }
    if index is not None:
        info |= {
            "storage": "memmap" if isinstance(features, np.memmap) else "ram",
            "pack_dir": str(target),
            "content_sha256": index["content_sha256"],
        }
    else:
        info |= {"storage": "ram", "pack_dir": ""}
    info |= {
        "dim": int(features.shape[1]),
        "n_instances": int(features.shape[0]),
        "dtype": features.dtype.name,
    }
    return info


def build_collection(
    src: Sources, cfg: DataConfig, *, pack: bool = False, force: bool = False
) -> BagCollection:
    """Read ``src``'s feature files (once) into a `BagCollection`.

    Args:
        src: matched labels and files; its problems are raised first.
        cfg: ``cache_dir``, ``preload_max_gb`` and ``feature_dtype`` are used.
        pack: always use (and if needed write) the pack cache.
        force: rebuild the pack even if it is up to date (implies ``pack``).

    Raises:
        DataError: the first label/file problem, an unreadable file, an empty bag, a dim mismatch,
            or NaN/Inf features (each naming the file and the fix).
    """
    src.raise_problems()
    budget = ram_budget(cfg.preload_max_gb)
    stats = source_stats(src.paths)
    target = pack_dir(cfg, src)
    had_pack = target.exists()
    loaded = _usable_pack(target, src, stats, budget, cfg.feature_dtype) if had_pack and not force else None
    if loaded is None:
        want_pack = pack or force or had_pack
        result = _read(src, stats, target, None if want_pack else budget, cfg.feature_dtype)
        if "pack" in result:  # announce only when the pack was asked for: _read logged why otherwise
            loaded = _open_pack(result["pack"], budget, announce=want_pack)
    if loaded is not None:
        features, offsets, index = loaded
    else:
        features, offsets, index = result["features"], result["offsets"], None
    t = src.table
    return BagCollection(
        name=src.name,
        slide_ids=list(t.slide_ids),
        case_ids=list(t.case_ids),
        fine_labels=t.fine_labels,
        features=features,
        offsets=offsets,
        hierarchy=src.hierarchy,
        sites=t.sites,
        fingerprint=fingerprint(src, stats),
        info=_collection_info(src, target, features, index),
    )


def pack_dataset(cfg: DataConfig, force: bool = False) -> Path:
    """Write (or refresh) the pack cache of the file-backed dataset ``cfg.name``; returns its directory.

    Used by ``benchmark data pack``. An up-to-date pack is kept unless ``force``.
    """
    src = prepare(cfg)
    # preload_max_gb=0: only memory-map the result; nothing needs to be in RAM to write a pack.
    bags = build_collection(src, dataclasses.replace(cfg, preload_max_gb=0), pack=True, force=force)
    return Path(bags.info["pack_dir"])
