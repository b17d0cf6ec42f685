"""Feature stores on disk: layout detection (and the per-file readers, re-exported).

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

The per-file readers live in `benchmark.data.files.readers` and are re-exported here.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import h5py

from benchmark.core.errors import DataError
from benchmark.data.files.readers import (
    FEATURE_KEYS,
    FeatureMeta,
    checked_bag,
    feature_meta,
    feature_shape,
    read_features,
)

__all__ = [
    "FEATURE_KEYS",
    "LAYOUT_HELP",
    "FeatureMeta",
    "FeatureStore",
    "checked_bag",
    "detect_store",
    "feature_meta",
    "feature_shape",
    "read_features",
]

log = logging.getLogger(__name__)

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
