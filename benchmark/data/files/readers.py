"""Per-file feature readers: one slide's (N, D) array from a ``.pt`` or ``.h5`` file, and its shape and dtype
from the file's header alone (h5 metadata; a memory-mapped ``torch.load`` for ``.pt``).

`.pt` files are only ever read with ``torch.load(weights_only=True)``: a file holding an arbitrary
pickled object is rejected, never executed. `benchmark.data.files.stores` re-exports these readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from benchmark.core.errors import DataError

__all__ = ["FEATURE_KEYS", "FeatureMeta", "checked_bag", "feature_meta", "feature_shape", "read_features"]

#: Dataset names holding the (N, D) instance features inside an h5 file, in lookup order.
FEATURE_KEYS = ("features", "patch_embeddings", "feats")
_NUMPY_DTYPES = {torch.float16: np.dtype(np.float16), torch.float64: np.dtype(np.float64)}


@dataclass(frozen=True)
class FeatureMeta:
    """A feature file's array as its header describes it.

    Attributes:
        rows: N, the instances.
        dim: D, the feature width.
        dtype: the stored precision (bfloat16 is reported as float32: numpy has no bfloat16).
    """

    rows: int
    dim: int
    dtype: np.dtype


def read_features(path: Path, dtype: np.dtype | type | None = np.float32) -> np.ndarray:
    """Read one slide's instance features.

    Args:
        path: a ``.pt`` or ``.h5`` feature file.
        dtype: precision of the result; None keeps float16 files float16 and reads any other float as
            float32 (`benchmark.data.memory.source_dtype`).

    Returns:
        (N, D) C-contiguous array of ``dtype``; N may be 0 (TRIDENT writes (0, D) for slides without tissue).

    Raises:
        DataError: unreadable, truncated or unsafe file, missing feature dataset, wrong rank/dtype, or
            values that overflow float16 when ``dtype`` is float16 and the file is not.
    """
    path = Path(path)
    x, is_view = _read_pt(path) if path.suffix == ".pt" else (_read_h5(path), False)
    if x.ndim != 2:
        raise DataError(
            f"feature file {path}: expected a 2-D (instances, dim) array, got shape {tuple(x.shape)}; "
            "re-extract it with one row per patch."
        )
    if not (np.issubdtype(x.dtype, np.floating)):
        raise DataError(f"feature file {path}: expected float features, got dtype {x.dtype}; re-extract it.")
    if dtype is None:
        dtype = np.float16 if x.dtype == np.float16 else np.float32
    # A view of a mapped .pt must not outlive this call (the file could change under it): always copy it.
    with np.errstate(over="ignore"):  # a float16 overflow is reported below, with the file and the fix
        out = np.array(x, dtype=dtype, order="C") if is_view else np.asarray(x, dtype=dtype, order="C")
    if out.dtype == np.float16 and x.dtype != np.float16 and np.isinf(out).any() and not np.isinf(x).any():
        raise DataError(
            f"feature file {path} has values beyond the float16 range (±65504); load it with "
            "--feature-dtype fp32 (or source)."
        )
    return out


def checked_bag(x: np.ndarray, path: Path, ref: tuple[int, Path] | None, rows: int | None) -> np.ndarray:
    """``x`` (N, D) read from ``path``, after the checks every loaded bag passes.

    Args:
        x: the array `read_features` returned.
        path: its file (named in errors).
        ref: (D, file) of the first bag of the dataset, None for the first bag itself.
        rows: N as the file's header gave it before reading (None = not known).

    Raises:
        DataError: the file changed since its header was read, an empty bag, a width different from
            ``ref``'s, or NaN/Inf values (each naming the file and the fix).
    """
    if rows is not None and len(x) != rows:
        raise DataError(
            f"feature file {path} changed while it was read ({rows} rows in its header, {len(x)} read); "
            "rerun once nothing writes to the feature directory."
        )
    if len(x) == 0:
        raise DataError(
            f"feature file {path} has 0 instances (an empty bag, e.g. a slide without tissue); remove the "
            "slide from the label file or re-extract it."
        )
    if ref is not None and x.shape[1] != ref[0]:
        raise DataError(
            f"feature file {path} has dim {x.shape[1]} but {ref[1]} has dim {ref[0]}; all slides must come from "
            "one encoder: re-extract it or point --features at a single encoder's directory."
        )
    bad = ~np.isfinite(x)
    if bad.any():
        raise DataError(
            f"feature file {path} contains {int(bad.sum())} NaN/Inf value(s) in {int(bad.any(axis=1).sum())} "
            "row(s); re-extract the slide or remove it from the label file."
        )
    return x


def _torch_load(path: Path, mmap: bool) -> object:
    return torch.load(path, weights_only=True, map_location="cpu", mmap=mmap)


def _read_pt(path: Path) -> tuple[np.ndarray, bool]:
    """The file's array and whether it is a view of the memory-mapped file."""
    try:
        # Memory-mapped: the caller's copy in the target dtype is the only full-size allocation.
        obj = _torch_load(path, mmap=True)
        mapped = True
    except Exception:  # legacy (non-zip) files cannot be mapped; the plain load below names real damage
        obj, mapped = None, False
    if obj is None:
        try:
            obj = _torch_load(path, mmap=False)
        # torch raises UnpicklingError/RuntimeError/KeyError/EOFError... on bad files
        except Exception as exc:
            text = str(exc).strip()
            reason = f"{type(exc).__name__}: {text.splitlines()[0][:120]}" if text else type(exc).__name__
            if "weights only load failed" in text.lower():
                reason = "it holds a pickled Python object, not a plain tensor (not loaded, for safety)"
            elif isinstance(exc, (RuntimeError, EOFError, KeyError)):
                reason = f"truncated or corrupt file ({reason})"
            raise DataError(
                f"feature file {path} cannot be read as a tensor: {reason}; save features with "
                "torch.save(tensor) or re-extract the slide."
            ) from None
    if isinstance(obj, dict):  # some pipelines save {"features": tensor}; accept the known keys only
        obj = next((obj[k] for k in FEATURE_KEYS if k in obj), obj)
    if not isinstance(obj, torch.Tensor):
        raise DataError(
            f"feature file {path} holds a {type(obj).__name__}, not a (N, D) float tensor; "
            "save features with torch.save(tensor)."
        )
    if obj.dtype == torch.bfloat16:  # numpy has no bfloat16
        return obj.float().numpy(), False
    return obj.detach().numpy(), mapped


def _open_h5(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        reason = str(exc).splitlines()[0][:120]
        raise DataError(
            f"feature file {path} is not a readable HDF5 file ({reason}); it is probably truncated or "
            "corrupt: re-extract or re-copy it."
        ) from None


def _feature_dataset(f: h5py.File, path: Path) -> h5py.Dataset:
    for key in FEATURE_KEYS:
        if key in f and isinstance(f[key], h5py.Dataset):
            return f[key]
    raise DataError(
        f"feature file {path} has no feature dataset (looked for {', '.join(FEATURE_KEYS)}; found "
        f"{sorted(f.keys())}); point --features at a directory of instance-feature files."
    )


def _read_h5(path: Path) -> np.ndarray:
    with _open_h5(path) as f:
        ds = _feature_dataset(f, path)
        try:
            return ds[()]
        except (OSError, ValueError, RuntimeError) as exc:  # damaged chunks surface only when read
            raise DataError(
                f"feature file {path}: reading '{ds.name}' failed ({str(exc)[:120]}); the file is corrupt: "
                "re-extract or re-copy it."
            ) from None


def _pt_meta(path: Path) -> FeatureMeta | None:
    try:
        obj = _torch_load(path, mmap=True)  # maps the file: the shape without reading the data
    except Exception:  # legacy or damaged: unknown here; reading the file reports the damage by name
        return None
    if isinstance(obj, dict):
        obj = next((obj[k] for k in FEATURE_KEYS if k in obj), obj)
    if not isinstance(obj, torch.Tensor) or obj.ndim != 2 or not obj.is_floating_point():
        return None
    dtype = _NUMPY_DTYPES.get(obj.dtype, np.dtype(np.float32))  # bfloat16 is read as float32
    return FeatureMeta(int(obj.shape[0]), int(obj.shape[1]), dtype)


def feature_meta(path: Path) -> FeatureMeta | None:
    """Shape and dtype of a feature file without reading its data; None when the header cannot tell (a legacy
    non-zip ``.pt``, a non-tensor, a non-2-D or non-float array: reading the file then reports the problem).

    Raises:
        DataError: an h5 file that cannot be opened or has no feature dataset.
    """
    path = Path(path)
    if path.suffix == ".pt":
        return _pt_meta(path)
    with _open_h5(path) as f:
        ds = _feature_dataset(f, path)
        if ds.ndim != 2 or not np.issubdtype(ds.dtype, np.floating):
            return None
        return FeatureMeta(int(ds.shape[0]), int(ds.shape[1]), np.dtype(ds.dtype))


def feature_shape(path: Path) -> tuple[int, ...] | None:
    """(N, D) from the file's header without reading the data (see `feature_meta`); None when unknown."""
    meta = feature_meta(path)
    return None if meta is None else (meta.rows, meta.dim)
