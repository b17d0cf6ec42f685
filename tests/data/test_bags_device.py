"""Features as a torch tensor on a device (`BagCollection.features_to`) and `PaddedBatch.to`, checked on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.core.hierarchy import Hierarchy
from benchmark.data.bags import BagCollection, instance_statistics, pad_batch

HIERARCHY = Hierarchy.from_groups({"a": ["a1", "a2"], "b": ["b1"]})


def _bags(dtype: type) -> BagCollection:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 9, size=6)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return BagCollection(
        name="tiny",
        slide_ids=[f"s{i}" for i in range(6)],
        case_ids=[f"s{i}" for i in range(6)],
        fine_labels=np.array([0, 1, 2, 0, 1, 2]),
        features=rng.standard_normal((int(offsets[-1]), 16)).astype(dtype),
        offsets=offsets,
        hierarchy=HIERARCHY,
    )


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("max_instances", [None, 3])
def test_device_tensor_batches_equal_the_numpy_path(dtype, standardize, max_instances):
    bags = _bags(dtype)
    on_device = bags.features_to("cpu")
    assert (
        isinstance(on_device.features, torch.Tensor)
        and on_device.features.dtype == torch.from_numpy(bags.features).dtype
    )
    assert isinstance(bags.features, np.ndarray)  # a shallow copy: the original is untouched
    scale = instance_statistics(bags, [0, 2, 4]) if standardize else None
    for index in ([0, 1, 2], [5, 3], [4]):
        want = pad_batch(
            bags, index, max_instances=max_instances, rng=np.random.default_rng(1), standardize=scale
        )
        got = pad_batch(
            on_device, index, max_instances=max_instances, rng=np.random.default_rng(1), standardize=scale
        )
        assert got.x.dtype == want.x.dtype == torch.float32
        assert torch.equal(got.x, want.x) and torch.equal(got.mask, want.mask)
        assert torch.equal(got.fine, want.fine) and torch.equal(got.coarse, want.coarse)


def test_subset_and_statistics_of_device_features():
    bags = _bags(np.float32)
    dev = bags.features_to(torch.device("cpu"))
    sub = dev.subset([4, 1])
    assert isinstance(sub.features, torch.Tensor)
    np.testing.assert_array_equal(sub.features.numpy(), bags.subset([4, 1]).features)
    for a, b in zip(instance_statistics(dev, [0, 3]), instance_statistics(bags, [0, 3]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_padded_batch_to_cpu_copies_nothing():
    batch = pad_batch(_bags(np.float16), [0, 1])
    moved = batch.to(torch.device("cpu"))
    assert moved.x.data_ptr() == batch.x.data_ptr() and moved.mask.data_ptr() == batch.mask.data_ptr()
    assert moved.fine.data_ptr() == batch.fine.data_ptr()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_padded_batch_to_cuda_and_device_features_match():
    bags = _bags(np.float16)
    want = pad_batch(bags, [0, 1, 2])
    moved = want.to(torch.device("cuda"))
    assert moved.x.is_cuda and moved.index.device.type == "cpu"
    got = pad_batch(bags.features_to("cuda"), [0, 1, 2])
    assert got.x.is_cuda and torch.equal(got.x.cpu(), want.x) and torch.equal(got.mask.cpu(), want.mask)
    assert got.to(torch.device("cuda")).x.data_ptr() == got.x.data_ptr()
