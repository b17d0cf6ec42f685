"""Where a slide's instances lie: the patch coordinates stored next to its features.

CLAM (``h5_files/<slide>.h5``), TRIDENT (``features_<enc>/<slide>.h5``, ``patches/<slide>_patches.h5``) and
STAMP files hold ``coords`` (N, 2): the top-left corner of each patch in level-0 pixels, row i of ``coords``
being instance i of the features. The patch side comes from the h5 attributes (TRIDENT
``patch_size_level0``; CLAM ``patch_size`` at ``patch_level``), else from the smallest non-zero spacing of
the coordinates. Simulated and classical datasets have no coordinates.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from benchmark.core.config import DataConfig
from benchmark.core.errors import DataError
from benchmark.core.hierarchy import Hierarchy
from benchmark.data.files.prepare import is_file_dataset, prepare
from benchmark.data.files.stores import read_features

__all__ = ["PatchGrid", "SlideSource", "coords_from_h5", "infer_spacing", "read_slide", "slide_grids"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PatchGrid:
    """Patch positions of one slide.

    Attributes:
        coords: (N, 2) int64 top-left corners (x, y) in level-0 pixels; row i is instance i.
        patch_size: side of a patch in level-0 pixels, when the file records it (else None).
        patch_level: pyramid level at which ``patch_size`` is given (CLAM), or 0.
        source: the file the coordinates came from.
    """

    coords: np.ndarray
    patch_size: float | None = None
    patch_level: int = 0
    source: str = ""

    def side(self, level_downsamples: Sequence[float] | None = None, override: float | None = None) -> float:
        """The patch side in level-0 pixels: ``override``, else the recorded size (scaled from its level by
        the slide's ``level_downsamples`` when known), else the smallest non-zero coordinate spacing."""
        if override is not None:
            return float(override)
        if self.patch_size is not None:
            scale = 1.0
            if self.patch_level and level_downsamples and self.patch_level < len(level_downsamples):
                scale = float(level_downsamples[self.patch_level])
            return self.patch_size * scale
        return infer_spacing(self.coords)


@dataclass(frozen=True)
class SlideSource:
    """One slide read from a file-backed dataset: its features, label and (when stored) patch grid."""

    features: np.ndarray  # (N, D) float32
    fine_label: int
    grid: PatchGrid | None
    hierarchy: Hierarchy


def infer_spacing(coords: np.ndarray) -> float:
    """The smallest non-zero difference between distinct x or y coordinates (the tiling stride), 1 if none."""
    steps = [np.diff(np.unique(coords[:, k])) for k in range(2)]
    steps = np.concatenate([s[s > 0] for s in steps])
    return float(steps.min()) if len(steps) else 1.0


def _attr(attrs: h5py.AttributeManager, key: str) -> float | None:
    value = attrs.get(key)
    if value is None:
        return None
    value = np.asarray(value).ravel()
    return float(value[0]) if value.size else None


def coords_from_h5(path: Path) -> PatchGrid | None:
    """``coords`` of an h5 feature or patch file (None when it has none)."""
    with h5py.File(path, "r") as f:
        if "coords" not in f:
            return None
        ds = f["coords"]
        coords = np.asarray(ds[()], dtype=np.int64)
        if coords.ndim != 2 or coords.shape[1] != 2:
            raise DataError(
                f"{path}: coords has shape {coords.shape}, expected (N, 2) top-left (x, y) patch corners."
            )
        attrs = {**f.attrs, **ds.attrs}  # CLAM and TRIDENT store their patching parameters on coords
        size = _attr(attrs, "patch_size_level0")
        level = 0
        if size is None:
            size = _attr(attrs, "patch_size")
            level = int(_attr(attrs, "patch_level") or 0)
    return PatchGrid(coords, size, level, str(path))


def _coord_files(path: Path, slide_id: str) -> list[Path]:
    """Files that may hold a slide's coordinates: its own h5, else CLAM's or TRIDENT's companions."""
    parent = path.parent.parent
    candidates = [path] if path.suffix == ".h5" else []
    candidates += [parent / "h5_files" / f"{slide_id}.h5", parent / "patches" / f"{slide_id}_patches.h5"]
    return [p for p in candidates if p.is_file()]


def _grid(path: Path, slide_id: str, n_rows: int, *, strict: bool) -> PatchGrid | None:
    grid = None
    for candidate in _coord_files(path, slide_id):
        grid = coords_from_h5(candidate)
        if grid is not None:
            break
    if grid is not None and len(grid.coords) != n_rows:
        msg = (
            f"{grid.source}: {len(grid.coords)} coords for {n_rows} feature rows of {path}; "
            "coordinates must list the patches in feature order (re-extract the slide)."
        )
        if strict:
            raise DataError(msg)
        log.warning("%s", msg)
        return None
    return grid


def slide_grids(data: DataConfig, slides: dict[str, int]) -> dict[str, PatchGrid | None]:
    """Patch grids of ``slides`` (slide id → its number of instances), read once the dataset's files are
    resolved; every grid is None for datasets not read from files. A grid whose row count differs from the
    slide's is dropped with a warning (the slide is then drawn in index order)."""
    if not is_file_dataset(data.name):
        return dict.fromkeys(slides)
    src = prepare(data)
    where = {sid: i for i, sid in enumerate(src.table.slide_ids)}
    return {
        sid: _grid(src.paths[where[sid]], sid, n, strict=False) if sid in where else None
        for sid, n in slides.items()
    }


def read_slide(data: DataConfig, slide_id: str) -> SlideSource | None:
    """One slide of a file-backed dataset, read from its own files only (None for other datasets).

    Raises:
        DataError: ``slide_id`` is not a labelled slide of the dataset, or its coordinates do not match its
            features row for row.
    """
    if not is_file_dataset(data.name):
        return None
    src = prepare(data)
    if slide_id not in src.table.slide_ids:
        shown = ", ".join(src.table.slide_ids[:5])
        raise DataError(
            f"--slide {slide_id}: not a labelled slide of dataset {data.name} ({src.store.directory}); "
            f"slides are e.g. {shown}."
        )
    i = src.table.slide_ids.index(slide_id)
    features = read_features(src.paths[i])
    grid = _grid(src.paths[i], slide_id, len(features), strict=True)
    return SlideSource(features, int(src.table.fine_labels[i]), grid, src.hierarchy)
