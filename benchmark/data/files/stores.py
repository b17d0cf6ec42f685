"""Feature stores on disk: layout detection and per-file readers.

Supported layouts (one file per slide, the slide id is the file name without its suffix):

=========== ================================================ ===========================================
layout      files                                            array read
=========== ================================================ ===========================================
``clam-pt`` ``pt_files/<slide>.pt``                          a saved float tensor (N, D)
``clam-h5`` ``h5_files/<slide>.h5``                          ``features`` (N, D) (+ ``coords`` (N, 2))
``trident`` ``[<job>/<mag>x_<ps>px_<ov>px_overlap/]``         ``features`` (N, D) (+ ``coords``); (0, D)
            ``features_<encoder>/<slide>.h5`` (or ``.pt``)   for slides without tissue
``stamp``   ``<dir>/<slide>.h5``                             ``feats`` or ``patch_embeddings`` (N, D)
``h5``      any other directory of ``.h5`` files             ``features`` (N, D)
``pt``      any other directory of ``.pt`` files             a saved float tensor (N, D)
=========== ================================================ ===========================================

`.pt` files are only ever read with ``torch.load(weights_only=True)``: a file holding an arbitrary
pickled object is rejected, never executed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from benchmark.core.errors import DataError

__all__ = [
    "FEATURE_KEYS",
    "LAYOUT_HELP",
    "FeatureStore",
    "detect_store",
    "feature_shape",
    "read_features",
]

log = logging.getLogger(__name__)

#: Dataset names holding the (N, D) instance features inside an h5 file, in lookup order.
FEATURE_KEYS = ("features", "patch_embeddings", "feats")

#: One-line description of the accepted layouts, used in error messages.
LAYOUT_HELP = (
    "features as one file per slide in pt_files/<slide>.pt or h5_files/<slide>.h5 (CLAM), "
    "features_<encoder>/<slide>.h5 (TRIDENT) or <dir>/<slide>.h5 with feats/patch_embeddings (STAMP)"
)

# Directories that never hold per-slide instance features (TRIDENT/CLAM by-products, raw PANDA data).
_SKIP_DIRS = {
    "patches",
    "thumbnails",
    "contours",
    "contours_geojson",
    "train_images",
    "train_label_masks",
    "masks",
    "stitches",
    "packs",
}
_MAX_DEPTH = 3
_GENERIC = ("h5", "pt")  # layouts recognised only by file suffix


@dataclass(frozen=True)
class FeatureStore:
    """A directory with one feature file per slide.

    Attributes:
        layout: one of ``clam-pt``, ``clam-h5``, ``trident``, ``stamp``, ``h5``, ``pt``.
        directory: the directory holding the files.
        suffix: ``.pt`` or ``.h5``.
        encoder: the encoder name when the layout records it (TRIDENT ``features_<encoder>``).
    """

    layout: str
    directory: Path
    suffix: str
    encoder: str | None = None

    def files(self) -> dict[str, Path]:
        """Slide id → file, sorted by slide id (hidden files and other suffixes are ignored)."""
        found = {
            e.name[: -len(self.suffix)]: Path(e.path)
            for e in os.scandir(self.directory)
            if e.name.endswith(self.suffix) and not e.name.startswith(".") and e.is_file()
        }
        return dict(sorted(found.items()))

    def describe(self) -> str:
        enc = f", encoder {self.encoder}" if self.encoder else ""
        return f"{self.directory} ({self.layout}{enc})"


# ---------------------------------------------------------------------------------------- readers
def read_features(path: Path) -> np.ndarray:
    """Read one slide's instance features.

    Args:
        path: a ``.pt`` or ``.h5`` feature file.

    Returns:
        (N, D) float32 array; N may be 0 (TRIDENT writes (0, D) for slides without tissue).

    Raises:
        DataError: unreadable, truncated or unsafe file, missing feature dataset, wrong rank/dtype.
    """
    path = Path(path)
    x = _read_pt(path) if path.suffix == ".pt" else _read_h5(path)
    if x.ndim != 2:
        raise DataError(
            f"feature file {path}: expected a 2-D (instances, dim) array, got shape {tuple(x.shape)}; "
            "re-extract it with one row per patch."
        )
    if not (np.issubdtype(x.dtype, np.floating)):
        raise DataError(f"feature file {path}: expected float features, got dtype {x.dtype}; re-extract it.")
    return np.ascontiguousarray(x, dtype=np.float32)


def _read_pt(path: Path) -> np.ndarray:
    try:
        obj = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # torch raises UnpicklingError/RuntimeError/KeyError/EOFError... on bad files
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
        obj = obj.float()
    return obj.detach().numpy()


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


def feature_shape(path: Path) -> tuple[int, ...] | None:
    """(N, D) from h5 metadata without reading the data; None for ``.pt`` (no readable header)."""
    path = Path(path)
    if path.suffix != ".h5":
        return None
    with _open_h5(path) as f:
        return tuple(int(s) for s in _feature_dataset(f, path).shape)


# ---------------------------------------------------------------------------------------- detection
def _h5_keys(files: list[Path]) -> set[str] | None:
    """Top-level keys of the first readable file among the first few (None if none is readable)."""
    for p in files[:3]:
        try:
            with h5py.File(p, "r") as f:
                return set(f.keys())
        except OSError:
            continue
    return None


def _classify(d: Path) -> FeatureStore | None:
    """The store directory ``d`` holds, or None when it holds no per-slide feature files."""
    name = d.name
    if name in _SKIP_DIRS or name.startswith("slide_features_"):
        return None
    try:
        entries = [e for e in os.scandir(d) if e.is_file() and not e.name.startswith(".")]
    except OSError:
        return None
    h5 = sorted(Path(e.path) for e in entries if e.name.endswith(".h5"))
    pt = sorted(Path(e.path) for e in entries if e.name.endswith(".pt"))
    if not h5 and not pt:
        return None
    suffix = ".h5" if h5 else ".pt"
    if name == "pt_files" and pt:
        return FeatureStore("clam-pt", d, ".pt")
    if name == "h5_files" and h5:
        return FeatureStore("clam-h5", d, ".h5")
    if name.startswith("features_"):
        return FeatureStore("trident", d, suffix, encoder=name[len("features_") :])
    if not h5:
        return FeatureStore("pt", d, ".pt")
    keys = _h5_keys(h5)
    if keys is None:  # nothing readable: let the loader report each corrupt file by name
        return FeatureStore("h5", d, ".h5")
    if keys & {"feats", "patch_embeddings"}:
        return FeatureStore("stamp", d, ".h5")
    if "features" in keys:
        return FeatureStore("h5", d, ".h5")
    return None  # e.g. patch-coordinate files (coords only)


def _walk(root: Path, depth: int) -> list[FeatureStore]:
    own = _classify(root)
    if own is not None and own.layout not in _GENERIC:
        return [own]
    # A generic match may be a stray file (a checkpoint next to h5_files/): keep looking below it.
    found: list[FeatureStore] = [own] if own is not None else []
    if depth == 0:
        return found
    try:
        subdirs = sorted(Path(e.path) for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return []
    for sub in subdirs:
        if sub.name not in _SKIP_DIRS:
            found.extend(_walk(sub, depth - 1))
    return found


def detect_store(root: str | Path, *, option: str = "--features") -> FeatureStore:
    """Find the feature store at or under ``root`` (searched up to 3 levels deep).

    Args:
        root: a feature directory itself (``pt_files``, ``h5_files``, ``features_<enc>``, a STAMP
            directory) or a directory above it (data dir, CLAM feature dir, TRIDENT job dir).
        option: the CLI option that overrides the directory, named in error messages.

    Raises:
        DataError: nothing found, or several candidate directories (e.g. two TRIDENT encoders).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"feature directory {root} does not exist; expected {LAYOUT_HELP}.")
    found = _walk(root, _MAX_DEPTH)
    if not found:
        raise DataError(f"no feature files found under {root}; expected {LAYOUT_HELP}; or pass {option} DIR.")
    named = [s for s in found if s.layout not in _GENERIC]
    if named and len(named) < len(found):
        log.info(
            "ignoring unnamed feature-like files in %s",
            ", ".join(str(s.directory) for s in found if s not in named),
        )
        found = named
    if len(found) > 1:
        # A CLAM feature dir often holds both pt_files and h5_files with the same features: use the
        # pt files, as CLAM's own dataset does by default.
        parents = {s.directory.parent for s in found}
        layouts = {s.layout for s in found}
        if len(parents) == 1 and layouts == {"clam-pt", "clam-h5"}:
            chosen = next(s for s in found if s.layout == "clam-pt")
            log.info("found pt_files and h5_files under %s; using %s", root, chosen.directory)
            return chosen
        if layouts == {"trident"}:
            encs = ", ".join(f"{s.encoder} ({s.directory})" for s in found)
            raise DataError(
                f"several TRIDENT encoders found under {root}: {encs}; choose one with {option} <dir>."
            )
        dirs = ", ".join(s.describe() for s in found)
        raise DataError(
            f"several feature directories found under {root}: {dirs}; choose one with {option} <dir>."
        )
    log.info("feature store: %s", found[0].describe())
    return found[0]
