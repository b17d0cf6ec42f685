"""The RAM budget, the automatic memory map above it, and feature precision for non-file datasets."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from benchmark.core.config import DataConfig
from benchmark.data import fixtures as fx
from benchmark.data import memory
from benchmark.data.files.datasets import load_panda
from benchmark.data.loading import load_dataset

_GIB = 2**30


def test_target_dtype():
    assert memory.target_dtype("source", np.float16) == np.float16
    assert memory.target_dtype("source", np.float32) == np.float32
    assert memory.target_dtype("source", np.float64) == np.float32  # the models compute in float32
    assert memory.target_dtype("fp16", np.float32) == np.float16
    assert memory.target_dtype("fp32", np.float16) == np.float32


def test_budget_is_the_smaller_of_the_setting_and_half_the_available_ram(monkeypatch):
    monkeypatch.setattr(memory, "available_ram", lambda: 10 * _GIB)
    assert memory.ram_budget(8.0) == memory.RamBudget(5 * _GIB, "half of the available RAM (10.0 GiB)")
    assert memory.ram_budget(2.0) == memory.RamBudget(2 * _GIB, "data.preload_max_gb=2")
    assert memory.ram_budget(0.0).nbytes == 0


@pytest.fixture
def cfg(tmp_path: Path) -> DataConfig:
    slides = fx.make_slides(6, dim=8, seed=2)
    fx.write_clam_h5(tmp_path / "data", slides)
    fx.write_panda_csv(tmp_path / "data" / "train.csv", fx.panda_rows(list(slides)))
    return DataConfig(name="panda", data_dir=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"))


def test_memmap_is_chosen_when_available_ram_is_short(cfg, monkeypatch, caplog):
    nbytes = load_panda(cfg).features.nbytes  # fits: preloaded
    monkeypatch.setattr(memory, "available_ram", lambda: nbytes)  # half of it is the budget now
    caplog.set_level("INFO", logger="benchmark.data.files.pack")
    bags = load_panda(cfg)
    assert isinstance(bags.features, np.memmap) and bags.info["storage"] == "memmap"
    lines = [r.getMessage() for r in caplog.records if "RAM budget" in r.getMessage()]
    assert len(lines) == 1 and "half of the available RAM" in lines[0] and "memory-mapping" in lines[0]
    # The pack now exists: with RAM to spare it is loaded into memory again.
    monkeypatch.setattr(memory, "available_ram", lambda: 100 * nbytes)
    again = load_panda(cfg)
    assert not isinstance(again.features, np.memmap) and again.info["storage"] == "ram"
    np.testing.assert_array_equal(again.features, bags.features)


def test_preload_max_gb_zero_forces_the_memmap(cfg, caplog):
    caplog.set_level("INFO", logger="benchmark.data.files.pack")
    bags = load_panda(dataclasses.replace(cfg, preload_max_gb=0))
    assert isinstance(bags.features, np.memmap)
    assert "data.preload_max_gb=0" in caplog.text


def test_simulated_set_keeps_fp16_unless_asked(tmp_path):
    cfg = DataConfig(name="panda-sim", scale=0.1, cache_dir=str(tmp_path))
    source = load_dataset(cfg)
    assert source.features.dtype == np.float16 and isinstance(source.features, np.memmap)
    wide = load_dataset(dataclasses.replace(cfg, feature_dtype="fp32"))
    assert wide.features.dtype == np.float32 and not isinstance(wide.features, np.memmap)
    np.testing.assert_array_equal(wide.features, np.asarray(source.features, dtype=np.float32))
    half = load_dataset(dataclasses.replace(cfg, feature_dtype="fp16"))
    assert isinstance(half.features, np.memmap) and half.features.dtype == np.float16  # already fp16: no copy


def test_cast_above_the_budget_keeps_the_features(tmp_path, monkeypatch, caplog):
    cfg = DataConfig(name="panda-sim", scale=0.1, cache_dir=str(tmp_path), feature_dtype="fp32")
    monkeypatch.setattr(memory, "available_ram", lambda: 0)
    with caplog.at_level("WARNING", logger="benchmark.data.memory"):
        bags = load_dataset(cfg)
    assert bags.features.dtype == np.float16 and "keeping panda-sim's float16 features" in caplog.text
