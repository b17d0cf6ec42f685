"""PANDA-like hierarchical bags of real digit images (datasets-and-formats.md C2), source-agnostic.

Digits 3, 4, 5 play Gleason patterns 3, 4, 5; every other digit is benign tissue. A bag's label is
recomputed from the digits it actually holds (primary = most frequent pattern, secondary = the
highest-grade other pattern present, ISUP from the Gleason score), never copied from the target the
generator aimed at.

Leakage: the image pool is partitioned into ``n_pools`` disjoint, class-stratified sub-pools and each
bag is drawn from exactly one of them (images may repeat across bags *within* a pool, as in Ilse et
al.). The loader makes the pool the bag's case, so case-grouped splits never put one image in two
roles. Every pool gets the same per-class bag quota, so each pool is a miniature of the whole set.

Random streams (``SeedSequence(seed, spawn_key=...)``): the pool partition, the per-pool target
grades and each bag have their own stream, so bag i depends only on (seed, i, its pool and target)
and the pool partition does not depend on the number of bags.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from benchmark.data.sim.core import quota_assign, rng_for
from benchmark.data.sim.datasets import gleason_score, isup_grade
from benchmark.data.sim.panda import GLEASON_TO_ISUP

__all__ = [
    "BENIGN_DIGITS",
    "PANDA_GRADE_SHARES",
    "PATTERN_DIGITS",
    "DigitBagPlan",
    "DigitPandaParams",
    "bag_label",
    "draw_bags",
    "partition_pools",
]

PATTERN_DIGITS = (3, 4, 5)  # digit d plays Gleason pattern d
BENIGN_DIGITS = (0, 1, 2, 6, 7, 8, 9)
# ISUP 0..5 shares of HMIL's 10,202 PANDA slides (datasets-and-formats.md C2, step 1).
PANDA_GRADE_SHARES = (0.267, 0.255, 0.129, 0.118, 0.116, 0.114)
# The Gleason scores of each ISUP grade; a bag's target score is drawn uniformly among them.
_SCORES_OF_GRADE = {g: sorted(s for s, v in GLEASON_TO_ISUP.items() if v == g) for g in range(6)}

POOL_STREAM, TARGET_STREAM, BAG_STREAM = 0, 1, 2


@dataclass(frozen=True)
class DigitPandaParams:
    """Generator parameters (every one is logged in ``BagCollection.info``).

    Attributes:
        n_bags: number of bags (the loaders set it from ``DataConfig.scale``).
        n_pools: disjoint class-stratified image sub-pools; each becomes one case (k-fold needs k ≤ n_pools).
        grade_shares: target ISUP 0..5 shares (allocated per pool by largest remainder, so every grade
            is present in every pool once ``n_bags ≥ 6 · n_pools``).
        bag_mean, bag_sd, bag_min: bag size n ~ round(N(bag_mean, bag_sd²)), clipped to ≥ bag_min.
        tumour_frac: U(lo, hi) tumour fraction f of a cancer bag; t = max(min_tumour, round(f·n)) instances.
        min_tumour: at least this many pattern instances in a cancer bag.
        tertiary_prob: chance of adding 1..tertiary_max instances of a missing third pattern (0 = off);
            it can change the realised grade, which is why labels are recomputed from the content.
        tertiary_max: see ``tertiary_prob``.
    """

    n_bags: int = 600
    n_pools: int = 5
    grade_shares: tuple[float, ...] = PANDA_GRADE_SHARES
    bag_mean: float = 20.0
    bag_sd: float = 4.0
    bag_min: int = 8
    tumour_frac: tuple[float, float] = (0.25, 0.75)
    min_tumour: int = 3
    tertiary_prob: float = 0.0
    tertiary_max: int = 2

    def as_info(self) -> dict[str, object]:
        """Flat, JSON-friendly copy (tuples as lists) for ``BagCollection.info``."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class DigitBagPlan:
    """The drawn bags, as indices into the source image array (features are gathered by the caller).

    Attributes:
        image_index: (T,) int64 source-image index of every instance, bag after bag.
        offsets: (S + 1,) int64, bag i spans instances offsets[i]:offsets[i + 1].
        labels: (S,) int64 ISUP grade recomputed from the bag's digits.
        targets: (S,) int64 ISUP grade the generator aimed at (differs only with tertiary patterns).
        bag_pool: (S,) int64 sub-pool each bag was drawn from.
        pool_of_image: (n_images,) int64 sub-pool of every source image.
        pattern_counts: (S, 3) int64 instances of digits 3, 4, 5 per bag.
    """

    image_index: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    targets: np.ndarray
    bag_pool: np.ndarray
    pool_of_image: np.ndarray
    pattern_counts: np.ndarray


def bag_label(digits: np.ndarray) -> int:
    """ISUP grade of a bag from the digits of its instances (C2 rule).

    Args:
        digits: (N,) int digit of every instance.

    Example: ten 3s, three 4s, one 5 → Gleason 3+5 → ISUP 4 (needle-biopsy convention, not 3+4).
    """
    counts = np.bincount(np.asarray(digits, dtype=np.int64), minlength=10)
    return isup_grade(*gleason_score(counts[3], counts[4], counts[5]))


def partition_pools(digits: np.ndarray, n_pools: int, seed: int) -> np.ndarray:
    """Split the images into ``n_pools`` disjoint class-stratified sub-pools.

    Args:
        digits: (n_images,) int digit label of every source image.
        n_pools: number of sub-pools.
        seed: dataset seed (the partition uses its own stream).

    Returns:
        (n_images,) int64 pool index; per digit the pool sizes differ by at most one.
    """
    rng = rng_for(seed, POOL_STREAM)
    pool = np.empty(len(digits), dtype=np.int64)
    for d in range(10):
        members = rng.permutation(np.flatnonzero(digits == d))
        for p, chunk in enumerate(np.array_split(members, n_pools)):
            pool[chunk] = p
    return pool


def _pattern_counts(rng: np.random.Generator, grade: int, n: int, p: DigitPandaParams) -> dict[int, int]:
    """Instances of patterns 3, 4, 5 for a bag of size n aiming at ISUP ``grade`` (C2 steps 2, 4, 6)."""
    counts = {3: 0, 4: 0, 5: 0}
    if grade == 0:
        return counts
    scores = _SCORES_OF_GRADE[grade]
    prim, sec = scores[int(rng.integers(len(scores)))]
    f = rng.uniform(*p.tumour_frac)
    t = int(min(max(p.min_tumour, round(f * n)), n - 1))  # keep at least one benign instance
    if prim == sec:
        counts[prim] = t
    else:
        # n_s ≤ (t − 1) // 2 keeps the primary strictly the most frequent pattern.
        n_sec = int(rng.integers(1, (t - 1) // 2 + 1))
        counts[sec], counts[prim] = n_sec, t - n_sec
    # Always draw, so switching the tertiary option on does not shift the other draws of this bag.
    u, m = rng.random(), int(rng.integers(1, p.tertiary_max + 1))
    missing = [g for g in PATTERN_DIGITS if counts[g] == 0]
    third = missing[int(rng.integers(len(missing)))]
    if u < p.tertiary_prob and counts[prim] > m and n - t - m >= 1:
        counts[third] = m
    return counts


def _pick(rng: np.random.Generator, pool: np.ndarray, k: int) -> np.ndarray:
    """k images from a sub-pool, without replacement unless the pool is smaller than k."""
    return rng.choice(pool, size=k, replace=k > len(pool))


def draw_bags(digits: np.ndarray, p: DigitPandaParams, seed: int) -> DigitBagPlan:
    """Draw all bags: pool partition, per-pool target quotas, sizes, compositions, images, labels.

    Args:
        digits: (n_images,) int digit label of every source image.
        p: generator parameters.
        seed: dataset seed.
    """
    digits = np.asarray(digits, dtype=np.int64)
    pool_of_image = partition_pools(digits, p.n_pools, seed)
    benign = np.isin(digits, BENIGN_DIGITS)
    pools_benign = [np.flatnonzero(benign & (pool_of_image == q)) for q in range(p.n_pools)]
    pools_digit = [
        {d: np.flatnonzero((digits == d) & (pool_of_image == q)) for d in PATTERN_DIGITS}
        for q in range(p.n_pools)
    ]
    # Bags are laid out pool after pool; each pool gets the same grade quotas (± rounding).
    per_pool = [len(c) for c in np.array_split(np.arange(p.n_bags), p.n_pools)]
    bag_pool = np.repeat(np.arange(p.n_pools), per_pool)
    target_rng = rng_for(seed, TARGET_STREAM)
    targets = np.concatenate([quota_assign(target_rng, k, np.asarray(p.grade_shares)) for k in per_pool])

    rows: list[np.ndarray] = []
    counts = np.zeros((p.n_bags, 3), dtype=np.int64)
    labels = np.zeros(p.n_bags, dtype=np.int64)
    for i in range(p.n_bags):
        rng = rng_for(seed, BAG_STREAM, i)
        q = int(bag_pool[i])
        n = max(p.bag_min, int(round(rng.normal(p.bag_mean, p.bag_sd))))
        tumour = _pattern_counts(rng, int(targets[i]), n, p)
        parts = [_pick(rng, pools_digit[q][g], tumour[g]) for g in PATTERN_DIGITS]
        parts.append(_pick(rng, pools_benign[q], n - sum(tumour.values())))
        bag = rng.permutation(np.concatenate(parts))  # instance order carries no information
        rows.append(bag)
        counts[i] = [tumour[g] for g in PATTERN_DIGITS]
        labels[i] = bag_label(digits[bag])  # from the content, never the target
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    return DigitBagPlan(
        image_index=np.concatenate(rows).astype(np.int64),
        offsets=offsets,
        labels=labels,
        targets=targets.astype(np.int64),
        bag_pool=bag_pool,
        pool_of_image=pool_of_image,
        pattern_counts=counts,
    )
