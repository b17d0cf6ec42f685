"""Source precision in RAM, preallocated loading and the dtype of the pack cache (benchmark.data.files.pack)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from benchmark.core.config import DataConfig
from benchmark.core.errors import DataError
from benchmark.data import fixtures as fx
from benchmark.data.bags import pad_batch
from benchmark.data.files import packfile, stores
from benchmark.data.files.datasets import load_panda
from benchmark.data.files.prepare import prepare


def _cfg(tmp_path: Path, **kw) -> DataConfig:
    return DataConfig(name="panda", data_dir=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"), **kw)


def _write(tmp_path: Path, slides: dict, fmt: str) -> None:
    (fx.write_pt if fmt == "pt" else fx.write_clam_h5)(tmp_path / "data", slides)
    fx.write_panda_csv(tmp_path / "data" / "train.csv", fx.panda_rows(list(slides)))


@pytest.mark.parametrize("fmt", ["pt", "h5"])
def test_preallocated_loading_equals_per_file_concatenation(tmp_path: Path, fmt: str, monkeypatch) -> None:
    slides = fx.make_slides(7, dim=8, seed=3)
    _write(tmp_path, slides, fmt)
    cfg = _cfg(tmp_path)
    # The old loader: every file read into a list, then one np.concatenate (a 2x peak).
    before = np.concatenate([stores.read_features(p) for p in prepare(cfg).paths])
    joins: list[int] = []
    real = np.concatenate
    monkeypatch.setattr(packfile.np, "concatenate", lambda *a, **k: joins.append(1) or real(*a, **k))
    bags = load_panda(cfg)
    assert joins == []  # the shapes came from the headers: one array, filled slice by slice
    assert bags.features.dtype == np.float32 and bags.features.flags.owndata
    np.testing.assert_array_equal(bags.features, before)
    assert packfile.scan(prepare(cfg).paths).rows == len(before)


def test_legacy_pt_without_a_readable_header_still_loads(tmp_path: Path) -> None:
    slides = fx.make_slides(4, dim=6, seed=1)
    out = tmp_path / "data" / "pt_files"
    out.mkdir(parents=True)
    for sid, x in slides.items():  # pre-1.6 torch format: cannot be memory-mapped
        torch.save(torch.from_numpy(x), out / f"{sid}.pt", _use_new_zipfile_serialization=False)
    fx.write_panda_csv(tmp_path / "data" / "train.csv", fx.panda_rows(list(slides)))
    assert stores.feature_meta(out / "slide_000.pt") is None
    bags = load_panda(_cfg(tmp_path))
    np.testing.assert_array_equal(bags.features, np.concatenate(list(slides.values())))


@pytest.mark.parametrize("fmt", ["pt", "h5"])
def test_fp16_files_stay_fp16_and_batches_are_float32(tmp_path: Path, fmt: str) -> None:
    slides = {k: v.astype(np.float16) for k, v in fx.make_slides(5, dim=8, seed=4).items()}
    if fmt == "h5":  # the fixture writer forces float32; write float16 datasets directly
        out = tmp_path / "data" / "h5_files"
        out.mkdir(parents=True)
        for sid, x in slides.items():
            with h5py.File(out / f"{sid}.h5", "w") as f:
                f["features"] = x
        fx.write_panda_csv(tmp_path / "data" / "train.csv", fx.panda_rows(list(slides)))
    else:
        _write(tmp_path, slides, fmt)
    bags = load_panda(_cfg(tmp_path))
    assert bags.features.dtype == np.float16 and bags.info["dtype"] == "float16"
    for i, sid in enumerate(bags.slide_ids):
        np.testing.assert_array_equal(bags.bag(i), slides[sid])
    batch = pad_batch(bags, [0, 1, 2])
    assert batch.x.dtype == torch.float32
    np.testing.assert_array_equal(
        batch.x[1, : bags.lengths[1]].numpy(), slides[bags.slide_ids[1]].astype(np.float32)
    )
    assert load_panda(_cfg(tmp_path, feature_dtype="fp32")).features.dtype == np.float32


def test_fp32_files_held_as_fp16_on_request(tmp_path: Path) -> None:
    slides = fx.make_slides(5, dim=8, seed=5)
    _write(tmp_path, slides, "pt")
    bags = load_panda(_cfg(tmp_path, feature_dtype="fp16"))
    assert bags.features.dtype == np.float16
    np.testing.assert_array_equal(bags.features, np.concatenate(list(slides.values())).astype(np.float16))
    assert pad_batch(bags, [0, 4]).x.dtype == torch.float32


def test_fp16_overflow_names_the_file_and_the_fix(tmp_path: Path) -> None:
    slides = fx.make_slides(3, dim=4, seed=6)
    slides["slide_001"][0, 0] = 1e6
    _write(tmp_path, slides, "pt")
    with pytest.raises(
        DataError, match=r"slide_001\.pt has values beyond the float16 range.*--feature-dtype fp32"
    ):
        load_panda(_cfg(tmp_path, feature_dtype="fp16"))


def test_pack_stores_the_dtype_and_is_rebuilt_when_it_changes(tmp_path: Path, caplog) -> None:
    slides = fx.make_slides(6, dim=8, seed=7)
    _write(tmp_path, slides, "h5")
    mm = _cfg(tmp_path, preload_max_gb=0)
    first = load_panda(mm)
    target = Path(first.info["pack_dir"])
    index = json.loads((target / "index.json").read_text())
    assert (index["dtype"], index["source_dtype"]) == ("float32", "float32")
    assert isinstance(first.features, np.memmap) and first.features.dtype == np.float32
    del first
    caplog.set_level("INFO", logger="benchmark.data.files.pack")
    half = load_panda(dataclasses.replace(mm, feature_dtype="fp16"))
    assert "holds float32 features, data.feature_dtype=fp16 asks for float16" in caplog.text
    assert isinstance(half.features, np.memmap) and half.features.dtype == np.float16
    assert np.load(target / "features.npy", mmap_mode="r").dtype == np.float16
    assert json.loads((target / "index.json").read_text())["dtype"] == "float16"
    np.testing.assert_array_equal(half.features, np.concatenate(list(slides.values())).astype(np.float16))
    caplog.clear()
    assert load_panda(dataclasses.replace(mm, feature_dtype="fp16")).features.dtype == np.float16
    assert "stale" not in caplog.text  # the fp16 pack is reused as it is
    assert load_panda(mm).features.dtype == np.float32  # "source" of float32 files: rebuilt as float32


def test_old_pack_without_a_dtype_record_is_rebuilt(tmp_path: Path, caplog) -> None:
    _write(tmp_path, fx.make_slides(4, dim=8, seed=8), "h5")
    mm = _cfg(tmp_path, preload_max_gb=0)
    target = Path(load_panda(mm).info["pack_dir"])
    index = json.loads((target / "index.json").read_text())
    for key in ("dtype", "source_dtype"):
        del index[key]
    index["version"] = 1
    (target / "index.json").write_text(json.dumps(index))
    caplog.set_level("INFO", logger="benchmark.data.files.pack")
    load_panda(mm)
    assert "index version 1 != 2" in caplog.text
    assert json.loads((target / "index.json").read_text())["dtype"] == "float32"
