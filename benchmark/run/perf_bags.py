"""The bag-size regimes `benchmark perf` measures, and its fixed train/validation split.

* ``small``: the dataset as it is (panda-sim: 240 slides, median 10 instances per bag).
* ``realistic``: the regime of real whole-slide images, 300 slides of 500–1000 instances × 1024 features,
  drawn by `realistic_bags`, a small seeded generator of this module (not the panda-sim simulator, whose
  calibrated plan is tied to its own bag-size law): fine labels follow the dataset's class shares over its
  hierarchy, and a random share of each bag's instances carries its class's prototype, so the models have
  something to learn while the compute is that of a real cohort.
* ``N`` (an int): the dataset's slides, each bag resampled to exactly N of its own instances (without
  replacement when the bag has ≥ N, with replacement otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.core.config import DataConfig
from benchmark.core.errors import ConfigError
from benchmark.core.hierarchy import Hierarchy
from benchmark.data.bags import BagCollection
from benchmark.data.loading import load_dataset

__all__ = [
    "BagRegime",
    "describe_bags",
    "fixed_size_bags",
    "load_perf_bags",
    "parse_bags",
    "perf_split",
    "realistic_bags",
]

REALISTIC_SLIDES = 300
REALISTIC_SIZES = (500, 1000)
REALISTIC_DIM = 1024


@dataclass(frozen=True)
class BagRegime:
    """A parsed ``--bags`` value: ``kind`` is "small", "realistic" or "fixed" (``size`` instances per bag)."""

    kind: str
    size: int | None = None

    @property
    def label(self) -> str:
        return str(self.size) if self.kind == "fixed" else self.kind


def parse_bags(text: str | BagRegime) -> BagRegime:
    """``"small"``, ``"realistic"`` or a positive int → `BagRegime`; anything else is a one-line `ConfigError`."""
    if isinstance(text, BagRegime):
        return text
    value = str(text).strip().lower()
    if value in ("small", "realistic"):
        return BagRegime(value)
    if value.isdigit() and int(value) >= 1:
        return BagRegime("fixed", int(value))
    raise ConfigError(
        f"--bags {text!r} is not a bag-size regime; use small (the dataset as it is), realistic "
        "(300 slides of 500–1000 instances) or a bag size N ≥ 1 (e.g. --bags 500)."
    )


def load_perf_bags(
    data: DataConfig, regime: BagRegime, *, slides: int | None = None, seed: int = 0
) -> BagCollection:
    """The collection a regime measures; ``slides`` caps the slide count (the first ones, or the generated
    cohort's size for ``realistic``). The dataset's own features stay as its loader gives them (memory-mapped
    or preloaded), as in ``benchmark run``."""
    if slides is not None and slides < 2:
        raise ConfigError(f"--slides must be ≥ 2 (one training and one validation slide), got {slides}.")
    bags = load_dataset(data)
    if regime.kind == "realistic":
        shares = np.bincount(bags.fine_labels, minlength=bags.hierarchy.n_fine)
        cohort = realistic_bags(bags.hierarchy, shares, n_slides=slides or REALISTIC_SLIDES, seed=seed)
        if (
            data.feature_dtype == "fp16"
        ):  # --feature-dtype fp16 holds features in half precision, as loaders do
            cohort.features = cohort.features.astype(np.float16)
        return cohort
    if slides is not None and slides < len(bags):
        bags = bags.subset(np.arange(slides))
    return fixed_size_bags(bags, regime.size, seed=seed) if regime.kind == "fixed" else bags


def realistic_bags(
    hierarchy: Hierarchy,
    class_shares: np.ndarray,
    *,
    n_slides: int = REALISTIC_SLIDES,
    sizes: tuple[int, int] = REALISTIC_SIZES,
    dim: int = REALISTIC_DIM,
    seed: int = 0,
) -> BagCollection:
    """WSI-sized bags: bag sizes uniform in ``sizes`` (inclusive), features (T, D) float32.

    x = ε + 1[instance carries the lesion] · μ_y, with ε ~ N(0, I_D), μ_y a random direction of norm 3 per fine
    class y, and a share U(0.05, 0.5) of each bag's instances carrying it.

    Args:
        hierarchy: the dataset's label tree (labels index ``hierarchy.fine``).
        class_shares: (K_f,) slide share per fine class (the dataset's); labels are assigned by quota so every
            class with a share is present.
        n_slides, sizes, dim, seed: cohort size, bag-size range, feature width D and generator seed.
    """
    rng = np.random.default_rng(seed)
    shares = np.asarray(class_shares, dtype=np.float64) / np.sum(class_shares)
    counts = np.floor(shares * n_slides).astype(np.int64)
    counts[np.argsort(-(shares * n_slides - counts), kind="stable")[: n_slides - counts.sum()]] += 1
    labels = rng.permutation(np.repeat(np.arange(len(shares)), counts))
    lengths = rng.integers(sizes[0], sizes[1] + 1, size=n_slides)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    protos = rng.standard_normal((len(shares), dim)).astype(np.float32)
    protos *= 3.0 / np.linalg.norm(protos, axis=1, keepdims=True)
    features = rng.standard_normal((int(offsets[-1]), dim), dtype=np.float32)
    for i in range(n_slides):
        bag = features[offsets[i] : offsets[i + 1]]  # a view: the lesion is added in place
        lesion = rng.random(len(bag)) < rng.uniform(0.05, 0.5)
        bag[lesion] += protos[labels[i]]
    ids = [f"perf-{i:05d}" for i in range(n_slides)]
    return BagCollection(
        name="perf-realistic",
        slide_ids=ids,
        case_ids=ids,
        fine_labels=labels,
        features=features,
        offsets=offsets,
        hierarchy=hierarchy,
        fingerprint=f"perf-realistic-{n_slides}-{sizes[0]}-{sizes[1]}-{dim}-{seed}",
        info={"generator": "benchmark.run.perf_bags.realistic_bags", "seed": seed},
    )


def fixed_size_bags(bags: BagCollection, size: int, *, seed: int = 0) -> BagCollection:
    """The same slides and labels, each bag resampled to exactly ``size`` of its own instances (order kept)."""
    rng = np.random.default_rng(seed)
    features = np.empty((len(bags) * size, bags.dim), dtype=bags.features.dtype)
    for i in range(len(bags)):
        n = int(bags.lengths[i])
        rows = np.sort(rng.choice(n, size=size, replace=size > n))
        features[i * size : (i + 1) * size] = bags.bag(i)[rows]
    return BagCollection(
        name=bags.name,
        slide_ids=list(bags.slide_ids),
        case_ids=list(bags.case_ids),
        fine_labels=bags.fine_labels,
        features=features,
        offsets=np.arange(len(bags) + 1, dtype=np.int64) * size,
        hierarchy=bags.hierarchy,
        sites=bags.sites,
        fingerprint=f"{bags.fingerprint}:bags{size}",
        info=bags.info,
    )


def perf_split(bags: BagCollection, *, val_every: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) positions: every ``val_every``-th slide of a label-sorted, shuffled order is validation,
    so each class with ≥ ``val_every`` slides is in both parts (a timing split, not a benchmark fold)."""
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(bags)), bags.fine_labels))
    val = np.sort(order[::val_every])
    train = np.setdiff1d(np.arange(len(bags)), val)
    return train, val


def describe_bags(bags: BagCollection) -> dict[str, object]:
    """Slides, feature width, in-memory dtype and bag-size min/median/max of a collection."""
    lengths = bags.lengths
    return {
        "slides": len(bags),
        "dim": bags.dim,
        "dtype": str(bags.features.dtype),
        "bag_min": int(lengths.min()),
        "bag_median": float(np.median(lengths)),
        "bag_max": int(lengths.max()),
    }
