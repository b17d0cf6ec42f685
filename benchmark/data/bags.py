"""In-memory (or memory-mapped) bag collections and the pad-and-mask batcher.

All instance features of a dataset live in one packed array ``features`` (T, D) with per-slide
``offsets`` (S + 1,), so bag i is ``features[offsets[i]:offsets[i + 1]]``. Files are read once
(preload or memory-mapped pack cache); training never touches the source files again. The array keeps
the precision it was loaded in (float16 or float32, `benchmark.data.memory`); `pad_batch` hands the model
float32. `BagCollection.features_to` moves it onto a training device, where `pad_batch` then gathers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from benchmark.core.errors import DataError
from benchmark.core.hierarchy import Hierarchy
from benchmark.data._gather import gather_numpy, gather_tensor

__all__ = ["BagCollection", "PaddedBatch", "instance_statistics", "pad_batch"]

_COPY_BLOCK_BYTES = 64 * 2**20  # `BagCollection.features_to` copies in blocks of this size


@dataclass
class BagCollection:
    """A labelled set of bags.

    Attributes:
        name: dataset name (registry key).
        slide_ids: (S,) unique slide identifiers.
        case_ids: (S,) patient/case identifiers (equal to slide ids when unknown).
        fine_labels: (S,) int64 fine label indices into ``hierarchy.fine``.
        features: (T, D) float32/float16 array, possibly a read-only memmap; or a torch tensor on a
            device after `features_to`.
        offsets: (S + 1,) int64, bag i spans rows offsets[i]:offsets[i+1].
        hierarchy: the fine → coarse tree.
        sites: (S,) acquisition site/provider, or None.
        fingerprint: content digest of labels + features (identifies the data in MLflow).
        info: free-form provenance (generator parameters, source layout...), logged as params.
    """

    name: str
    slide_ids: list[str]
    case_ids: list[str]
    fine_labels: np.ndarray
    features: np.ndarray | torch.Tensor
    offsets: np.ndarray
    hierarchy: Hierarchy
    sites: list[str] | None = None
    fingerprint: str = ""
    info: dict | None = None

    def __post_init__(self) -> None:
        s = len(self.slide_ids)
        self.fine_labels = np.asarray(self.fine_labels, dtype=np.int64)
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        if len(self.case_ids) != s or self.fine_labels.shape != (s,) or self.offsets.shape != (s + 1,):
            raise DataError(f"dataset {self.name}: inconsistent table sizes (slides={s}).")
        if len(set(self.slide_ids)) != s:
            raise DataError(f"dataset {self.name}: duplicate slide ids.")
        if s and (self.fine_labels.min() < 0 or self.fine_labels.max() >= self.hierarchy.n_fine):
            raise DataError(f"dataset {self.name}: fine label index outside the hierarchy.")
        if np.any(np.diff(self.offsets) <= 0):
            raise DataError(f"dataset {self.name}: empty bag(s) present; every bag needs ≥ 1 instance.")

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return len(self.slide_ids)

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def coarse_labels(self) -> np.ndarray:
        return self.hierarchy.coarse_of(self.fine_labels)

    def bag(self, i: int) -> np.ndarray:
        """Features of bag i, (N_i, D)."""
        return self.features[self.offsets[i] : self.offsets[i + 1]]

    def subset(self, index: Sequence[int] | np.ndarray) -> BagCollection:
        """A new collection holding only bags ``index`` (in that order), features copied.

        The other slides' features are not in the result at all, so code handed the subset cannot reach
        them (the tuning objective relies on this to keep test slides out of reach).
        """
        index = np.asarray(index, dtype=np.int64)
        lengths = self.lengths[index]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        src = self.features
        shape = (int(offsets[-1]), self.dim)
        if isinstance(src, torch.Tensor):
            features = torch.empty(shape, dtype=src.dtype, device=src.device)
        else:
            features = np.empty(shape, dtype=src.dtype)
        for j, i in enumerate(index):
            features[offsets[j] : offsets[j + 1]] = self.features[self.offsets[i] : self.offsets[i + 1]]
        return BagCollection(
            name=self.name,
            slide_ids=[self.slide_ids[i] for i in index],
            case_ids=[self.case_ids[i] for i in index],
            fine_labels=self.fine_labels[index],
            features=features,
            offsets=offsets,
            hierarchy=self.hierarchy,
            sites=[self.sites[i] for i in index] if self.sites is not None else None,
            fingerprint=f"{self.fingerprint}:subset{len(index)}",
            info=self.info,
        )

    def features_to(self, device: torch.device | str) -> BagCollection:
        """A shallow copy whose ``features`` is a (T, D) torch tensor on ``device``, in the same precision.

        `pad_batch` then gathers and pads batches on ``device`` (no host→device copy per batch). The copy
        goes in blocks, so the host never holds a second full array (e.g. of a memory-mapped pack).
        """
        device = torch.device(device)
        src = self.features
        if isinstance(src, torch.Tensor):
            return dataclasses.replace(self, features=src.to(device))
        dtype = torch.from_numpy(np.empty(0, dtype=src.dtype)).dtype
        out = torch.empty(tuple(src.shape), dtype=dtype, device=device)
        step = max(1, _COPY_BLOCK_BYTES // max(1, self.dim * src.itemsize))
        for start in range(0, len(src), step):
            out[start : start + step].copy_(torch.from_numpy(np.array(src[start : start + step])))
        return dataclasses.replace(self, features=out)

    def table(self) -> pd.DataFrame:
        """One row per slide: slide_id, case_id, fine/coarse label (index and name), site, n_instances."""
        h = self.hierarchy
        coarse = self.coarse_labels
        return pd.DataFrame(
            {
                "slide_id": self.slide_ids,
                "case_id": self.case_ids,
                "fine_label": self.fine_labels,
                "fine_name": [h.fine[i] for i in self.fine_labels],
                "coarse_label": coarse,
                "coarse_name": [h.coarse[i] for i in coarse],
                "site": self.sites if self.sites is not None else [""] * len(self),
                "n_instances": self.lengths,
            }
        )


@dataclass
class PaddedBatch:
    """A batch of padded bags.

    Attributes:
        x: (B, N_max, D) float32 features, zeros at padded positions.
        mask: (B, N_max) bool, True on real instances.
        fine: (B,) int64 fine labels.
        coarse: (B,) int64 coarse labels.
        index: (B,) int64 positions of these bags in the collection.
    """

    x: torch.Tensor
    mask: torch.Tensor
    fine: torch.Tensor
    coarse: torch.Tensor
    index: torch.Tensor

    def to(self, device: torch.device | str) -> PaddedBatch:
        """This batch on ``device`` (``index`` stays on the host).

        To CUDA, host tensors are pinned first so the copies are truly asynchronous (``non_blocking``
        from pageable memory is a synchronous staging copy); tensors already there are not copied. To the
        CPU nothing is copied.
        """
        device = torch.device(device)
        if device.type != "cuda":
            return PaddedBatch(
                self.x.to(device),
                self.mask.to(device),
                self.fine.to(device),
                self.coarse.to(device),
                self.index,
            )

        def move(t: torch.Tensor) -> torch.Tensor:
            return (t.pin_memory() if t.device.type == "cpu" else t).to(device, non_blocking=True)

        return PaddedBatch(move(self.x), move(self.mask), move(self.fine), move(self.coarse), self.index)


def pad_batch(
    bags: BagCollection,
    index: Sequence[int] | np.ndarray,
    *,
    max_instances: int | None = None,
    rng: np.random.Generator | None = None,
    standardize: tuple[np.ndarray, np.ndarray] | None = None,
) -> PaddedBatch:
    """Gather bags ``index`` into one padded batch.

    Args:
        bags: the collection.
        index: positions of the bags to batch.
        max_instances: training-time cap; bags longer than this are replaced by a random subset
            (without replacement, original order kept). None = full bags (always used for evaluation).
        rng: generator for the subset; required when ``max_instances`` is set.
        standardize: (mean, std), each (D,), applied to real instances only (padding stays 0); the
            statistics come from the training part of the fold (see `instance_statistics`).

    Returns:
        x (B, N_max, D) float32 whatever the stored precision, mask (B, N_max); both on the device of
        ``bags.features`` when it is a tensor (`BagCollection.features_to`), else on the host.
    """
    index = np.asarray(index, dtype=np.int64)
    rows: list[np.ndarray] = []
    for i in index:
        start, stop = int(bags.offsets[i]), int(bags.offsets[i + 1])
        n = stop - start
        if max_instances is not None and n > max_instances:
            if rng is None:
                raise ValueError("pad_batch: rng is required with max_instances")
            rows.append(start + np.sort(rng.choice(n, size=max_instances, replace=False)))
        else:
            rows.append(np.arange(start, stop))
    if isinstance(bags.features, torch.Tensor):
        x, mask = gather_tensor(bags.features, rows, standardize)
    else:
        x, mask = gather_numpy(bags.features, rows, standardize)
    fine = bags.fine_labels[index]
    return PaddedBatch(
        x=x,
        mask=mask,
        fine=torch.from_numpy(fine.copy()),
        coarse=torch.from_numpy(bags.hierarchy.coarse_of(fine)),
        index=torch.from_numpy(index.copy()),
    )


def instance_statistics(
    bags: BagCollection, index: Sequence[int] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std (D,) over all instances of the bags ``index`` (float64, streamed per bag).

    Used to standardise unscaled features (classical MIL sets) with training-part statistics only;
    a feature with zero variance gets std 1 so it maps to 0 instead of NaN.
    """
    total = np.zeros(bags.dim)
    squares = np.zeros(bags.dim)
    count = 0
    for i in np.asarray(index, dtype=np.int64):
        x = bags.bag(int(i))
        x = np.asarray(x.cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
        total += x.sum(0)
        squares += (x * x).sum(0)
        count += len(x)
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(squares / max(count, 1) - mean * mean, 0.0))
    std[std < 1e-12] = 1.0
    return mean, std
