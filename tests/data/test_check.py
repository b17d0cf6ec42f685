"""``benchmark data check`` reports (benchmark.data.check)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from benchmark.core.config import DataConfig
from benchmark.data import fixtures as fx
from benchmark.data.bags import BagCollection
from benchmark.data.check import check_collection, check_dataset
from benchmark.data.files import pack, stores
from benchmark.data.files.prepare import PANDA_HIERARCHY


@pytest.fixture
def slides() -> dict[str, np.ndarray]:
    return fx.make_slides(8, dim=8, seed=6)


def _cfg(tmp_path: Path, **kw) -> DataConfig:
    return DataConfig(name="panda", data_dir=str(tmp_path), cache_dir=str(tmp_path / "cache"), **kw)


def test_clean_dataset_counts_and_sizes(tmp_path: Path, slides: dict) -> None:
    fx.write_trident(tmp_path, slides)
    fx.write_panda_csv(tmp_path / "train.csv", fx.panda_rows(list(slides)))
    report = check_dataset(_cfg(tmp_path))
    assert report.ok and report.problems == [] and report.warnings == []
    # panda_rows cycles ISUP 0,1,2,3,4,5,4,5
    assert report.counts["fine"].tolist() == [1, 1, 1, 1, 2, 2]
    assert list(report.counts["fine"].index) == [f"ISUP {i}" for i in range(6)]
    assert report.counts["coarse"].to_dict() == {"benign": 1, "low-grade": 2, "high-grade": 5}
    sizes = np.array([len(x) for x in slides.values()])
    assert report.bag_sizes == {
        "min": sizes.min(),
        "median": np.median(sizes),
        "mean": sizes.mean(),
        "max": sizes.max(),
        "total": sizes.sum(),
    }
    assert report.info["layout"] == "trident" and report.info["dim"] == 8
    assert json.loads(json.dumps(report.to_dict()))["counts"]["coarse"]["high-grade"] == 5


def test_lists_every_problem_at_once(tmp_path: Path, slides: dict) -> None:
    ids = list(slides)
    bad = dict(slides)
    bad[ids[1]] = np.full((3, 8), np.nan, np.float32)  # NaN
    bad[ids[2]] = np.zeros((0, 8), np.float32)  # empty bag
    bad[ids[3]] = np.ones((4, 16), np.float32)  # other dim
    del bad[ids[4]]  # missing file
    bad["unlabelled"] = np.ones((2, 8), np.float32)  # extra file
    out = fx.write_trident(tmp_path, bad)
    corrupt = out / f"{ids[5]}.h5"
    corrupt.write_bytes(corrupt.read_bytes()[:900])  # truncated copy
    rows = fx.panda_rows(ids)
    rows[6] = (ids[6], "karolinska", 9, "3+3")  # label outside the hierarchy
    rows.append(rows[0])  # duplicate id
    fx.write_panda_csv(tmp_path / "train.csv", rows)
    report = check_dataset(_cfg(tmp_path))
    assert not report.ok
    text = "\n".join(report.problems)
    assert "appear on more than one row" in text and ids[0] in text
    assert "isup_grade outside 0..5" in text and ids[6] in text
    assert "have no feature file" in text and ids[4] in text
    assert f"{ids[5]}.h5 is not a readable HDF5 file" in text
    assert "differ from the majority dim 8" in text and f"{ids[3]}.h5 (dim 16)" in text
    assert "0 instances" in text and f"{ids[2]}.h5" in text
    assert "NaN/Inf" in text and f"{ids[1]}.h5 (24)" in text
    assert len(report.problems) == 7 and all("\n" not in p for p in report.problems)
    assert report.missing == [ids[4]] and report.extra == ["unlabelled"]
    assert any("unlabelled" in w for w in report.warnings)
    assert report.counts["fine"].sum() == 6  # labelled rows with a feature file
    assert report.bag_sizes["min"] == 0 and report.info["n_missing"] == 1
    json.dumps(report.to_dict())


def test_setup_errors_become_a_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCHMARK_DATA_DIR", raising=False)
    report = check_dataset(DataConfig(name="panda", cache_dir=str(tmp_path)))
    assert not report.ok and len(report.problems) == 1 and "panda-sim" in report.problems[0]
    assert report.to_dict()["ok"] is False


def test_fresh_pack_is_used_instead_of_rereading(
    tmp_path: Path, slides: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    fx.write_clam_h5(tmp_path, slides)
    fx.write_panda_csv(tmp_path / "train.csv", fx.panda_rows(list(slides)))
    cfg = _cfg(tmp_path)
    pack.pack_dataset(cfg)
    calls: list[Path] = []
    real = stores.read_features
    monkeypatch.setattr(stores, "read_features", lambda p: calls.append(p) or real(p))
    report = check_dataset(cfg)
    assert report.ok and calls == [] and report.info["pack_cache"] is True
    assert report.bag_sizes["total"] == sum(len(x) for x in slides.values())
    check_dataset(dataclasses.replace(cfg, cache_dir=str(tmp_path / "other-cache")))
    assert len(calls) == len(slides)  # without a pack every file is read once


def test_check_collection_counts_and_nan(slides: dict) -> None:
    xs = list(slides.values())
    feats = np.concatenate(xs)
    offsets = np.concatenate([[0], np.cumsum([len(x) for x in xs])])
    bags = BagCollection(
        "toy", list(slides), list(slides), np.array([0, 1, 2, 3, 4, 5, 5, 5]), feats, offsets, PANDA_HIERARCHY
    )
    report = check_collection(bags)
    assert report.ok and report.counts["fine"].tolist() == [1, 1, 1, 1, 1, 3]
    assert report.counts["coarse"].tolist() == [1, 2, 5]
    assert report.bag_sizes["total"] == len(feats) and report.info["n_slides"] == 8
    feats[offsets[2]] = np.inf
    report = check_collection(bags)
    assert not report.ok and "slide_002" in report.problems[0]
