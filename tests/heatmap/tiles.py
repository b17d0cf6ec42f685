"""Tiling a real slide for tests: a 128-px grid over level 0, tissue tiles kept by a saturation and brightness
threshold, each embedded by a small deterministic encoder (colour statistics and fixed random projections of
an 8 × 8 downsample). Rendering, not accuracy, is under test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

TILE = 128
DIM = 16


@dataclass(frozen=True)
class Tiled:
    """coords (N, 2) level-0 top-left corners, features (N, DIM), tissue (H, W) pixel mask, image size."""

    coords: np.ndarray
    features: np.ndarray
    tissue: np.ndarray


def tissue_mask(rgb: np.ndarray) -> np.ndarray:
    """(H, W) bool: stained pixels (saturation > 0.1 and not near-white)."""
    x = rgb.astype(np.float32) / 255.0
    hi, lo = x.max(-1), x.min(-1)
    return ((hi - lo) / np.maximum(hi, 1e-6) > 0.1) & (hi < 0.92)


def tissue_bbox(mask: np.ndarray, min_fraction: float = 0.01) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) over the rows and columns where at least ``min_fraction`` of pixels are tissue."""
    cols = np.flatnonzero(mask.mean(0) >= min_fraction)
    rows = np.flatnonzero(mask.mean(1) >= min_fraction)
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def tile_slide(path: Path, tile: int = TILE, min_tissue: float = 0.3) -> Tiled:
    import openslide

    with openslide.OpenSlide(str(path)) as slide:
        w, h = slide.dimensions
        rgb = np.asarray(slide.read_region((0, 0), 0, (w, h)).convert("RGB"))
    mask = tissue_mask(rgb)
    projection = np.random.default_rng(0).standard_normal((8 * 8 * 3, DIM - 6)).astype(np.float32) / 8
    coords, feats = [], []
    for y in range(0, h - tile + 1, tile):
        for x in range(0, w - tile + 1, tile):
            if mask[y : y + tile, x : x + tile].mean() < min_tissue:
                continue
            t = rgb[y : y + tile, x : x + tile].astype(np.float32) / 255.0
            small = t.reshape(8, tile // 8, 8, tile // 8, 3).mean((1, 3)).ravel()
            feats.append(np.concatenate([t.mean((0, 1)), t.std((0, 1)), small @ projection]))
            coords.append((x, y))
    return Tiled(np.asarray(coords, np.int64), np.asarray(feats, np.float32), mask)
