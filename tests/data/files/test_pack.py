"""Preload vs packed memory-mapped cache (benchmark.data.files.pack)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from benchmark.core.config import DataConfig
from benchmark.core.errors import DataError
from benchmark.data import fixtures as fx
from benchmark.data.files import pack, packfile, stores
from benchmark.data.files.datasets import load_panda
from benchmark.data.files.prepare import prepare


@pytest.fixture
def slides() -> dict[str, np.ndarray]:
    return fx.make_slides(6, dim=8, seed=2)


@pytest.fixture
def cfg(tmp_path: Path, slides: dict) -> DataConfig:
    fx.write_clam_h5(tmp_path / "data", slides)
    fx.write_panda_csv(tmp_path / "data" / "train.csv", fx.panda_rows(list(slides)))
    return DataConfig(name="panda", data_dir=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"))


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every call of the feature reader, by path."""
    seen: list[Path] = []
    real = stores.read_features

    def counting(path: Path, *args, **kwargs) -> np.ndarray:
        seen.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(stores, "read_features", counting)
    return seen


def _packs(cfg: DataConfig) -> list[str]:
    root = Path(cfg.cache_dir) / "packs"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def _assert_same(bags, slides: dict) -> None:
    assert bags.slide_ids == list(slides)
    for i, sid in enumerate(bags.slide_ids):
        np.testing.assert_array_equal(bags.bag(i), slides[sid])


def test_preload_reads_each_file_once_and_writes_no_cache(cfg: DataConfig, slides: dict, reads: list) -> None:
    bags = load_panda(cfg)
    _assert_same(bags, slides)
    assert sorted(p.stem for p in reads) == sorted(slides) and len(reads) == len(slides)
    assert bags.info["storage"] == "ram" and not isinstance(bags.features, np.memmap)
    assert bags.info["layout"] == "clam-h5" and bags.info["dim"] == 8
    assert _packs(cfg) == []


def test_memmap_pack_when_over_the_preload_limit(cfg: DataConfig, slides: dict, reads: list) -> None:
    bags = load_panda(dataclasses.replace(cfg, preload_max_gb=0))
    assert isinstance(bags.features, np.memmap) and bags.info["storage"] == "memmap"
    _assert_same(bags, slides)
    assert len(reads) == len(slides)
    target = Path(bags.info["pack_dir"])
    assert sorted(p.name for p in target.iterdir()) == ["features.npy", "index.json", "offsets.npy"]
    index = json.loads((target / "index.json").read_text())
    assert index["slide_ids"] == list(slides) and index["dim"] == 8 and index["layout"] == "clam-h5"
    assert index["n_instances"] == sum(len(x) for x in slides.values())
    src = index["sources"][0]
    assert set(src) == {"path", "size", "mtime_ns"} and src["size"] == os.stat(src["path"]).st_size
    assert len(index["content_sha256"]) == 64


def test_cache_is_reused_without_reading_sources(cfg: DataConfig, slides: dict, reads: list) -> None:
    first = pack.pack_dataset(cfg)
    assert len(reads) == len(slides)
    reads.clear()
    small = load_panda(cfg)  # fits the limit: the pack is loaded into RAM
    big = load_panda(dataclasses.replace(cfg, preload_max_gb=0))
    assert reads == []
    assert small.info["storage"] == "ram" and small.info["pack_dir"] == str(first)
    assert isinstance(big.features, np.memmap)
    _assert_same(small, slides)
    _assert_same(big, slides)
    assert pack.pack_dataset(cfg) == first and reads == []
    pack.pack_dataset(cfg, force=True)
    assert len(reads) == len(slides)


def test_fingerprint_same_for_ram_and_pack_and_tracks_changes(cfg: DataConfig) -> None:
    ram = load_panda(cfg).fingerprint
    mm = load_panda(dataclasses.replace(cfg, preload_max_gb=0)).fingerprint
    assert ram == mm and len(ram) == 64
    f = Path(cfg.data_dir) / "h5_files" / "slide_003.h5"
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    assert load_panda(cfg).fingerprint != ram


def test_cache_invalidated_when_a_source_changes(cfg: DataConfig, slides: dict, reads: list) -> None:
    mm = dataclasses.replace(cfg, preload_max_gb=0)
    load_panda(mm)
    reads.clear()
    changed = dict(slides)
    changed["slide_004"] = np.full((5, 8), 7.0, np.float32)
    fx.write_clam_h5(cfg.data_dir, {"slide_004": changed["slide_004"]})
    bags = load_panda(mm)
    assert len(reads) == len(slides)  # rebuilt: every file read once more
    _assert_same(bags, changed)
    reads.clear()
    path = Path(cfg.data_dir) / "h5_files" / "slide_001.h5"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5 * 10**9))  # touch only
    load_panda(mm)
    assert len(reads) == len(slides)
    assert len(_packs(cfg)) == 1  # rebuilt in place, old pack not left behind


def test_cache_rebuilt_when_slides_added_or_removed(cfg: DataConfig, slides: dict, reads: list) -> None:
    mm = dataclasses.replace(cfg, preload_max_gb=0)
    load_panda(mm)
    ids = list(slides)[:4]
    fx.write_panda_csv(Path(cfg.data_dir) / "train.csv", fx.panda_rows(ids))
    reads.clear()
    bags = load_panda(mm)
    assert bags.slide_ids == ids and len(reads) == 4
    _assert_same(bags, {k: slides[k] for k in ids})


def test_interrupted_pack_leaves_no_cache(
    cfg: DataConfig, slides: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    original = packfile.NpyAppender.write

    def failing(self, x):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full (simulated)")
        return original(self, x)

    monkeypatch.setattr(packfile.NpyAppender, "write", failing)
    with pytest.raises(RuntimeError, match="simulated"):
        pack.pack_dataset(cfg)
    assert _packs(cfg) == []  # neither the target nor a temporary directory is left
    monkeypatch.setattr(packfile.NpyAppender, "write", original)
    bags = load_panda(dataclasses.replace(cfg, preload_max_gb=0))
    _assert_same(bags, slides)


def test_unreadable_cache_is_discarded_and_rebuilt(
    cfg: DataConfig, slides: dict, caplog: pytest.LogCaptureFixture
) -> None:
    target = pack.pack_dataset(cfg)
    feats = target / "features.npy"
    feats.write_bytes(feats.read_bytes()[:200])  # damaged after the fact
    with caplog.at_level(logging.WARNING, logger="benchmark.data.files.pack"):
        bags = load_panda(cfg)
    assert "unusable" in caplog.text and str(target) in caplog.text
    _assert_same(bags, slides)
    assert (target / "features.npy").stat().st_size > 200  # rebuilt as a pack (the user asked for one)


def test_pt_set_larger_than_estimated_spills_to_a_pack(
    tmp_path: Path, slides: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    fx.write_pt(tmp_path / "data", slides)
    fx.write_panda_csv(tmp_path / "data" / "train.csv", fx.panda_rows(list(slides)))
    # e.g. legacy (non-zip) .pt files: no shape without a full read, sizes estimated at 0 bytes
    unknown = packfile.Scan(file_rows=[None] * len(slides), dim=None, unknown_bytes=0, all_fp16=False)
    monkeypatch.setattr(packfile, "scan", lambda paths: unknown)
    limit_bytes = 600  # more than the first bag, less than all bags
    cfg = DataConfig(
        name="panda",
        data_dir=str(tmp_path / "data"),
        cache_dir=str(tmp_path / "cache"),
        preload_max_gb=limit_bytes / 2**30,
    )
    bags = load_panda(cfg)
    assert isinstance(bags.features, np.memmap)
    _assert_same(bags, slides)


def test_load_errors_name_the_file(cfg: DataConfig, slides: dict) -> None:
    d = Path(cfg.data_dir)
    bad = np.array(slides["slide_002"])
    bad[1, 3] = np.nan
    fx.write_clam_h5(d, {"slide_002": bad})
    with pytest.raises(DataError, match=r"slide_002\.h5 contains 1 NaN/Inf value"):
        load_panda(cfg)
    fx.write_clam_h5(d, {"slide_002": np.full((3, 8), np.inf, np.float32)})
    with pytest.raises(DataError, match=r"slide_002\.h5 contains 24 NaN/Inf"):
        load_panda(dataclasses.replace(cfg, preload_max_gb=0))
    assert _packs(cfg) == []  # a failed pack leaves nothing behind
    fx.write_clam_h5(d, {"slide_002": np.zeros((0, 8), np.float32)})
    with pytest.raises(DataError, match=r"slide_002\.h5 has 0 instances"):
        load_panda(cfg)
    fx.write_clam_h5(d, {"slide_002": np.ones((4, 16), np.float32)})
    with pytest.raises(DataError, match=r"slide_002\.h5 has dim 16 but .*slide_000\.h5 has dim 8"):
        load_panda(cfg)
    path = d / "h5_files" / "slide_002.h5"
    fx.write_clam_h5(d, {"slide_002": slides["slide_002"]})
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match=r"slide_002\.h5 is not a readable HDF5 file"):
        load_panda(cfg)


def test_pack_dataset_rejects_simulated_datasets(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not read from files"):
        pack.pack_dataset(DataConfig(name="panda-sim", cache_dir=str(tmp_path)))


def test_npy_appender_writes_a_loadable_npy(tmp_path: Path) -> None:
    app = packfile.NpyAppender(tmp_path / "x.npy", 3)
    a, b = np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((4, 3), np.float32)
    app.write(a)
    app.write(b)
    app.close()
    got = np.load(tmp_path / "x.npy", mmap_mode="r")
    np.testing.assert_array_equal(got, np.concatenate([a, b]))
    assert app.rows == 6


def test_leftovers_of_killed_packers_are_ignored_and_cleaned(cfg: DataConfig, slides: dict) -> None:
    target = pack.pack_dir(cfg, prepare(cfg))
    target.parent.mkdir(parents=True)
    old = target.parent / f".tmp-{target.name}-dead"
    recent = target.parent / f".tmp-{target.name}-busy"
    for d in (old, recent):
        d.mkdir()
        (d / "features.npy").write_bytes(b"half")
    os.utime(old, (0, 0))
    bags = load_panda(dataclasses.replace(cfg, preload_max_gb=0))
    _assert_same(bags, slides)
    assert not old.exists() and recent.exists()  # a concurrent packer's directory is left alone
