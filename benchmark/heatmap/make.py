"""``benchmark heatmap``: one slide's attention from a logged fold model, drawn to a PNG; and the heatmaps
``benchmark run --heatmaps K`` logs in every fold run (`fold_heatmaps`)."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from benchmark.core.config import RunConfig
from benchmark.core.contract import MILModel
from benchmark.core.errors import ConfigError, DataError
from benchmark.core.hierarchy import Hierarchy
from benchmark.data import BagCollection, load_dataset
from benchmark.heatmap.attention import NoAttentionError, SlideAttention, select_heads, slide_attention
from benchmark.heatmap.checkpoint import load_checkpoint
from benchmark.heatmap.coords import PatchGrid, read_slide, slide_grids
from benchmark.heatmap.render import heatmap_figure
from benchmark.heatmap.slide import read_thumbnail
from benchmark.models import build_model

__all__ = ["HeatmapRequest", "HeatmapResult", "fold_heatmaps", "heatmap_name", "make_heatmap"]

log = logging.getLogger(__name__)
DPI = 150  # 10-inch figures → 1500 px wide


@dataclass(frozen=True)
class HeatmapRequest:
    """``benchmark heatmap`` options.

    Attributes:
        run: a parent run id (resolved to the fold testing ``slide``) or a fold run id.
        slide: the slide id.
        output: the PNG to write (default ``heatmap_<slide>[_<class>].png`` here).
        wsi: the slide's whole-slide image, to draw over its thumbnail (needs OpenSlide).
        head: draw only this class's head (``--class``).
        patch_size: patch side in level-0 pixels, over the recorded or inferred one.
        data_dir: the dataset's root when it moved since the run (default: as recorded in the run).
    """

    run: str
    slide: str
    output: str | None = None
    wsi: str | None = None
    head: str | None = None
    patch_size: float | None = None
    data_dir: str | None = None

    def __post_init__(self) -> None:
        if self.patch_size is not None and not self.patch_size > 0:
            raise ConfigError(f"--patch-size must be > 0 level-0 pixels, got {self.patch_size}.")


@dataclass(frozen=True)
class HeatmapResult:
    """What `make_heatmap` drew: the file, the fold run it used and what the figure shows."""

    path: Path
    fold_run: str
    fold: int
    model: str
    heads: list[str]
    n_instances: int
    has_coords: bool
    overlay: bool


def heatmap_name(slide_id: str, head: str | None = None) -> str:
    """``heatmap_<slide>[_<class>].png`` with characters outside ``[A-Za-z0-9._-]`` replaced by ``_``."""
    stem = f"heatmap_{slide_id}" + (f"_{head}" if head else "")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem) + ".png"


def _title(model: str, fold: int, slide_id: str, true: str | None, att: SlideAttention, names) -> str:
    k = int(np.argmax(att.fine_probs))
    labels = f"predicted {names[k]} (p = {att.fine_probs[k]:.2f})"
    return f"{model} · fold {fold} · slide {slide_id}\n" + (f"true {true} · " if true else "") + labels


def _slide(data, slide_id: str) -> tuple[np.ndarray, int, PatchGrid | None, Hierarchy]:
    """(features, fine label, grid, hierarchy) of one slide: from its own files for file-backed datasets,
    else from the loaded dataset (which has no coordinates)."""
    found = read_slide(data, slide_id)
    if found is not None:
        return found.features, found.fine_label, found.grid, found.hierarchy
    bags = load_dataset(data)
    if slide_id not in bags.slide_ids:
        raise DataError(
            f"--slide {slide_id}: not a slide of dataset {bags.name}; slides are e.g. "
            f"{', '.join(bags.slide_ids[:5])}."
        )
    i = bags.slide_ids.index(slide_id)
    return _bag(bags, i), int(bags.fine_labels[i]), None, bags.hierarchy


def _model(
    config: RunConfig, state_dict: Mapping[str, torch.Tensor], in_dim: int, hierarchy: Hierarchy
) -> MILModel:
    model = build_model(config.model, config.model_params, in_dim=in_dim, hierarchy=hierarchy)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1].strip()
        raise DataError(
            f"the checkpoint of {config.model} does not fit the model rebuilt for features of width {in_dim} "
            f"and {hierarchy.n_fine} classes ({first}); pass the dataset the run used (--data-dir)."
        ) from None
    return model.eval()


def _bag(bags: BagCollection, i: int) -> np.ndarray:
    x = bags.bag(i)
    return x.float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)


def make_heatmap(request: HeatmapRequest, client) -> HeatmapResult:  # noqa: ANN001 - an MlflowClient
    """Load the fold's model, compute the slide's attention and write the PNG.

    Raises:
        BenchmarkError: unknown run or slide, a model without attention, an unknown ``--class``, an
            unreadable ``--wsi`` (or OpenSlide missing).
    """
    ckpt = load_checkpoint(client, request.run, request.slide)
    config = ckpt.config
    data = config.data
    if request.data_dir:
        data = dataclasses.replace(data, data_dir=request.data_dir, features=None)
    features, label, grid, hierarchy = _slide(data, request.slide)
    model = _model(config, ckpt.state_dict, features.shape[1], hierarchy)
    att = slide_attention(model, features, hierarchy, model_name=config.model, standardize=ckpt.standardize)
    heads = select_heads(att, request.head)
    thumbnail = read_thumbnail(request.wsi) if request.wsi else None
    if thumbnail is not None and grid is None:
        log.warning("slide %s has no patch coordinates: drawing it rasterised, without --wsi", request.slide)
    title = _title(config.model, ckpt.fold, request.slide, hierarchy.fine[label], att, hierarchy.fine)
    if request.slide not in ckpt.test_slides:
        title += " · not a test slide of this fold"
    fig = heatmap_figure(att, heads, grid, title=title, thumbnail=thumbnail, patch_size=request.patch_size)
    path = Path(request.output) if request.output else Path(heatmap_name(request.slide, request.head))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return HeatmapResult(
        path=path,
        fold_run=ckpt.run_id,
        fold=ckpt.fold,
        model=config.model,
        heads=[att.heads[h] for h in heads],
        n_instances=len(features),
        has_coords=grid is not None,
        overlay=thumbnail is not None and grid is not None,
    )


def fold_heatmaps(
    config: RunConfig,
    bags: BagCollection,
    state_dict: Mapping[str, torch.Tensor],
    test_index: np.ndarray,
    *,
    k: int,
    fold: int,
    standardize: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[tuple[str, Figure]]:
    """Heatmaps of the first ``k`` test slides in slide-id order, as (artifact name, figure) pairs
    (``figures/heatmap_<slide>.png``); empty for a model without attention (logged once, not raised)."""
    if k <= 0 or len(test_index) == 0:
        return []
    chosen = sorted((int(i) for i in test_index), key=lambda i: bags.slide_ids[i])[:k]
    model = _model(config, state_dict, bags.dim, bags.hierarchy)
    ids = {bags.slide_ids[i]: int(bags.lengths[i]) for i in chosen}
    grids = slide_grids(config.data, ids)
    figures = []
    for i in chosen:
        sid = bags.slide_ids[i]
        try:
            att = slide_attention(
                model, _bag(bags, i), bags.hierarchy, model_name=config.model, standardize=standardize
            )
        except NoAttentionError:
            log.info("%s returns no attention: no heatmaps logged", config.model)
            return []
        true = bags.hierarchy.fine[int(bags.fine_labels[i])]
        title = _title(config.model, fold, sid, true, att, bags.hierarchy.fine)
        fig = heatmap_figure(att, list(range(len(att.heads))), grids[sid], title=title)
        figures.append((f"figures/{heatmap_name(sid)}", fig))
    return figures
