"""Drawing attention at the patches' positions: rasterised on its own, or blended over a slide thumbnail.

Each head's weights are normalised per slide to their percentile rank (`percentile_rank`), coloured with a
perceptually uniform colormap and painted as one square per patch, the highest weights last (on top). The
figure has one panel per drawn head, a shared colour bar and a title naming model, fold, slide and labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from benchmark.heatmap.attention import SlideAttention, percentile_rank
from benchmark.heatmap.coords import PatchGrid
from benchmark.heatmap.slide import Thumbnail

__all__ = [
    "CMAP",
    "COLORBAR_LABEL",
    "NO_COORDS",
    "HeatmapImage",
    "heatmap_figure",
    "heatmap_image",
    "index_grid",
]

CMAP = "inferno"
COLORBAR_LABEL = "attention (normalised per slide: percentile rank)"
NO_COORDS = "no patch coordinates: instances in index order"
RASTER_SIDE = 1600  # long side of a rasterised heatmap, in pixels
OVERLAY_ALPHA = 0.55
BACKGROUND = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class HeatmapImage:
    """One head drawn as an image.

    Attributes:
        image: (h, w, 3) uint8, the coloured patches (over the thumbnail when there is one).
        covered: (h, w) bool, the pixels a patch was painted on.
        extent: (left, right, bottom, top) of the image in level-0 pixels.
    """

    image: np.ndarray
    covered: np.ndarray
    extent: tuple[float, float, float, float]


def index_grid(n: int) -> PatchGrid:
    """Unit squares in index order, row by row on a near-square grid: for slides without coordinates."""
    cols = max(1, math.ceil(math.sqrt(n)))
    i = np.arange(n)
    return PatchGrid(np.stack([i % cols, i // cols], axis=1).astype(np.int64), patch_size=1.0, source="index")


def _paint(
    values: np.ndarray, corners: np.ndarray, side: tuple[float, float], shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Squares of side ``side`` (canvas px) at ``corners`` (N, 2) (canvas px), coloured by ``values`` in
    [0, 1]; ascending order, so the most attended patch is drawn last. Returns (h, w, 3) float and coverage."""
    h, w = shape
    layer = np.zeros((h, w, 3), dtype=np.float32)
    covered = np.zeros((h, w), dtype=bool)
    colours = matplotlib.colormaps[CMAP](values)[:, :3]
    x0 = np.clip(np.round(corners[:, 0]).astype(int), 0, w)
    y0 = np.clip(np.round(corners[:, 1]).astype(int), 0, h)
    x1 = np.clip(np.maximum(np.round(corners[:, 0] + side[0]).astype(int), x0 + 1), 0, w)
    y1 = np.clip(np.maximum(np.round(corners[:, 1] + side[1]).astype(int), y0 + 1), 0, h)
    for k in np.argsort(values, kind="stable"):
        layer[y0[k] : y1[k], x0[k] : x1[k]] = colours[k]
        covered[y0[k] : y1[k], x0[k] : x1[k]] = True
    return layer, covered


def heatmap_image(
    values: np.ndarray, grid: PatchGrid, side: float, thumbnail: Thumbnail | None = None
) -> HeatmapImage:
    """One head's normalised weights (N,) in [0, 1] drawn at ``grid`` with patches ``side`` level-0 px wide.

    With a thumbnail, the patches are alpha-blended over it (level-0 coordinates scaled by its downsample);
    without one, they are drawn on white, cropped to the patches' bounding box and at most `RASTER_SIDE`
    pixels on the long side.
    """
    coords = grid.coords.astype(np.float64)
    if thumbnail is not None:
        sx, sy = thumbnail.downsample
        shape = thumbnail.image.shape[:2]
        layer, covered = _paint(values, coords / (sx, sy), (side / sx, side / sy), shape)
        base = thumbnail.image.astype(np.float32) / 255.0
        alpha = OVERLAY_ALPHA * covered[..., None]
        image = base * (1 - alpha) + layer * alpha
        w0, h0 = thumbnail.dimensions
        extent = (0.0, float(w0), float(h0), 0.0)
    else:
        origin = coords.min(axis=0)
        span = coords.max(axis=0) + side - origin  # (width, height) in level-0 px
        scale = RASTER_SIDE / float(span.max())
        shape = (max(1, math.ceil(span[1] * scale)), max(1, math.ceil(span[0] * scale)))
        layer, covered = _paint(values, (coords - origin) * scale, (side * scale, side * scale), shape)
        image = np.where(covered[..., None], layer, np.asarray(BACKGROUND, dtype=np.float32))
        extent = (float(origin[0]), float(origin[0] + span[0]), float(origin[1] + span[1]), float(origin[1]))
    return HeatmapImage((np.clip(image, 0, 1) * 255).round().astype(np.uint8), covered, extent)


def heatmap_figure(
    att: SlideAttention,
    heads: Sequence[int],
    grid: PatchGrid | None,
    *,
    title: str,
    thumbnail: Thumbnail | None = None,
    patch_size: float | None = None,
) -> Figure:
    """The heatmap figure: one panel per head in ``heads`` (up to 3 per row) and a shared colour bar.

    Args:
        att: the slide's attention.
        heads: indices into ``att.heads`` to draw.
        grid: the patch coordinates; None draws the instances in index order and says so in the title.
        title: first title line (model · fold · slide · labels).
        thumbnail: the slide, to draw over (None: rasterised on white).
        patch_size: patch side in level-0 px, over the recorded or inferred one.
    """
    if grid is None:
        grid, thumbnail, title = index_grid(att.values.shape[1]), None, f"{title}\n{NO_COORDS}"
    levels = thumbnail.level_downsamples if thumbnail is not None else None
    side = grid.side(levels, patch_size)
    images = [heatmap_image(percentile_rank(att.values[h]), grid, side, thumbnail) for h in heads]
    ncols = min(3, len(heads))
    nrows = math.ceil(len(heads) / ncols)
    h, w = images[0].image.shape[:2]
    # 9 inches of panels across, at most 11 down (portrait slides get narrower panels), 150 dpi when saved
    panel_w = min(9.0 / ncols, 11.0 / (nrows * h / w))
    size = (max(8.0, ncols * panel_w + 1.5), max(3.0, nrows * panel_w * h / w + 1.0))
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, head, img in zip(axes.ravel(), heads, images, strict=False):
        ax.imshow(img.image, extent=img.extent, interpolation="antialiased")
        name = att.heads[head]
        if name != "attention":  # a class-wise head: say which class it attends for
            ax.set_title(name if name.startswith(("coarse ", "head ")) else f"class {name}", fontsize=10)
    mappable = ScalarMappable(Normalize(0, 1), CMAP)
    bar = fig.colorbar(mappable, ax=axes.ravel().tolist(), shrink=min(0.9, 0.45 + 0.15 * nrows))
    bar.set_label(COLORBAR_LABEL)
    fig.suptitle(title, fontsize=11)
    return fig
