"""Attention heatmaps: a logged fold model's attention on one slide, drawn at the patches' coordinates
(rasterised, or over the slide's thumbnail with OpenSlide).

`attention` runs the model and names its heads; `coords` reads patch coordinates from the feature files;
`slide` reads a whole-slide image; `render` draws; `checkpoint` reads a fold run back from MLflow; `make`
ties them together for ``benchmark heatmap`` and ``benchmark run --heatmaps K``.
"""

from benchmark.heatmap.attention import NoAttentionError, SlideAttention, slide_attention
from benchmark.heatmap.coords import PatchGrid, coords_from_h5
from benchmark.heatmap.make import HeatmapRequest, HeatmapResult, fold_heatmaps, make_heatmap
from benchmark.heatmap.render import heatmap_figure, heatmap_image
from benchmark.heatmap.slide import Thumbnail, read_thumbnail

__all__ = [
    "HeatmapRequest",
    "HeatmapResult",
    "NoAttentionError",
    "PatchGrid",
    "SlideAttention",
    "Thumbnail",
    "coords_from_h5",
    "fold_heatmaps",
    "heatmap_figure",
    "heatmap_image",
    "make_heatmap",
    "read_thumbnail",
    "slide_attention",
]
