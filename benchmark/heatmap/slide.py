"""Reading a whole-slide image (SVS, NDPI, MRXS, TIFF…) with OpenSlide: a thumbnail and the level scales.

OpenSlide is optional (``pip install 'hmil-bench[wsi]'``: openslide-python with the openslide-bin wheel);
it is imported only when a slide is read.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.core.errors import ConfigError, DataError

__all__ = ["Thumbnail", "read_thumbnail"]


@dataclass(frozen=True)
class Thumbnail:
    """A downsampled RGB view of a slide.

    Attributes:
        image: (h, w, 3) uint8.
        downsample: level-0 pixels per thumbnail pixel (x and y), e.g. 1.85 for a 2220-px-wide slide
            drawn 1200 px wide.
        dimensions: (width, height) of level 0.
        level_downsamples: the slide's pyramid scales (level 0 = 1), used to read CLAM's ``patch_level``.
        mpp: microns per level-0 pixel when the slide records it.
    """

    image: np.ndarray
    downsample: tuple[float, float]
    dimensions: tuple[int, int]
    level_downsamples: tuple[float, ...]
    mpp: float | None = None


def _openslide():  # noqa: ANN202 - the optional module
    try:
        return importlib.import_module("openslide")
    except ImportError:
        raise ConfigError(
            "--wsi needs OpenSlide, which is not installed; run pip install 'hmil-bench[wsi]' "
            "(openslide-python and the openslide-bin wheel), or leave --wsi out for a rasterised heatmap."
        ) from None


def read_thumbnail(path: str | Path, *, max_side: int = 1600) -> Thumbnail:
    """The slide's thumbnail, at most ``max_side`` pixels on its long side (OpenSlide reads the closest
    pyramid level and resizes it).

    Raises:
        DataError: the file is missing or not a slide OpenSlide can read.
        ConfigError: OpenSlide is not installed.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"--wsi {path}: no such file; pass the slide the features were extracted from.")
    openslide = _openslide()
    try:
        slide = openslide.OpenSlide(str(path))
    except (openslide.OpenSlideError, openslide.OpenSlideUnsupportedFormatError) as exc:
        raise DataError(
            f"--wsi {path}: OpenSlide cannot read it ({exc}); pass a whole-slide image (svs, ndpi, mrxs, tiff…)."
        ) from None
    with slide:
        width, height = slide.dimensions
        scale = min(1.0, max_side / max(width, height))
        thumb = np.asarray(slide.get_thumbnail((round(width * scale), round(height * scale))).convert("RGB"))
        mpp = slide.properties.get("openslide.mpp-x")
        levels = tuple(float(d) for d in slide.level_downsamples)
    h, w = thumb.shape[:2]
    return Thumbnail(
        image=thumb,
        downsample=(width / w, height / h),
        dimensions=(width, height),
        level_downsamples=levels,
        mpp=float(mpp) if mpp else None,
    )
