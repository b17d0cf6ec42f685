"""Feature statistics of a dataset: how much its instance features look like real patch embeddings.

`feature_stats` summarises a `BagCollection` (simulated or real) so a user can put the simulator next
to their own features (`benchmark data stats`). All statistics are computed on a uniform random sample
of at most ``max_instances`` instance rows (seeded, so they are reproducible), in float64:

- per-dimension means and standard deviations (summarised by quantiles over the D dimensions);
- the fraction of negative and of exactly-zero entries;
- the PCA spectrum of the centred sample: eigenvalues λ_1 ≥ … ≥ λ_D of the covariance, the share of
  variance of PC1, of the top 10 and top 100 PCs, and the number of PCs that reach 50 % and 90 %;
- the participation-ratio effective rank (Σλ)² / Σλ² (1 for one direction, D for isotropic noise);
- bag-size quantiles (all bags, not sampled);
- ``pattern_variance_share`` when instance labels exist (simulated and digit datasets): the between-
  pattern sum of squares over the total, Σ_g n_g ‖μ_g − μ‖² / Σ_n ‖x_n − μ‖², on the sample;
- ``slide_class_variance_share``: the same ratio for slide-mean features grouped by fine label (every
  slide, not sampled) — how much of the slide-level variation the labels explain.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from benchmark.core.config import DataConfig
from benchmark.data.bags import BagCollection
from benchmark.data.digits.datasets import generate_digit_panda
from benchmark.data.loading import load_dataset
from benchmark.data.sim.datasets import instance_patterns, is_simulated

__all__ = [
    "FeatureStats",
    "between_group_share",
    "effective_rank",
    "feature_stats",
    "load_with_instance_labels",
    "sample_rows",
]


@dataclass(frozen=True)
class FeatureStats:
    """What `feature_stats` measured (shares are fractions in [0, 1]).

    Attributes:
        n_slides, n_instances, dim: dataset size.
        n_sampled: instance rows the feature statistics were computed on.
        bag_size: quantiles of instances per bag (min, p10, median, p90, max) and the mean.
        dim_mean, dim_std: quantiles (min, median, max) over dimensions of the per-dimension mean and std.
        frac_negative, frac_zero: share of negative / exactly-zero entries.
        pc1_share, top10_share, top100_share: variance share of the leading principal components.
        pcs_for_50, pcs_for_90: fewest PCs that explain ≥ 50 % / ≥ 90 % of the variance.
        effective_rank: participation ratio (Σλ)²/Σλ².
        pattern_variance_share: between-instance-pattern variance share, or None without instance labels.
        slide_class_variance_share: between-fine-class share of slide-mean variance, or None (one class).
        eigenvalues: (min(D, 200),) leading covariance eigenvalues, for the spectrum figure.
        total_variance: Σλ over all components (the trace of the covariance).
    """

    n_slides: int
    n_instances: int
    dim: int
    n_sampled: int
    bag_size: dict[str, float]
    dim_mean: dict[str, float]
    dim_std: dict[str, float]
    frac_negative: float
    frac_zero: float
    pc1_share: float
    top10_share: float
    top100_share: float
    pcs_for_50: int
    pcs_for_90: int
    effective_rank: float
    pattern_variance_share: float | None
    slide_class_variance_share: float | None
    eigenvalues: tuple[float, ...]
    total_variance: float

    def to_dict(self) -> dict:
        return asdict(self)


def sample_rows(n_rows: int, max_rows: int, seed: int = 0) -> np.ndarray:
    """Sorted row indices: all rows when there are at most ``max_rows``, else a seeded uniform sample."""
    if n_rows <= max_rows:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=max_rows, replace=False))


def effective_rank(eigenvalues: np.ndarray) -> float:
    """Participation ratio (Σλ)² / Σλ² of non-negative eigenvalues (0 for an all-zero spectrum)."""
    lam = np.clip(np.asarray(eigenvalues, dtype=np.float64), 0.0, None)
    denom = float((lam**2).sum())
    return float(lam.sum() ** 2 / denom) if denom > 0 else 0.0


def between_group_share(x: np.ndarray, groups: np.ndarray) -> float | None:
    """Σ_g n_g ‖μ_g − μ‖² / Σ_n ‖x_n − μ‖² for (n, D) rows ``x`` and (n,) group ids; None if undefined."""
    x = np.asarray(x, dtype=np.float64)
    groups = np.asarray(groups)
    if len(np.unique(groups)) < 2:
        return None
    centred = x - x.mean(axis=0)
    total = float((centred**2).sum())
    if total <= 0:
        return None
    between = 0.0
    for g in np.unique(groups):
        rows = centred[groups == g]
        between += len(rows) * float((rows.mean(axis=0) ** 2).sum())
    return between / total


def _quantiles(values: np.ndarray, qs: dict[str, float]) -> dict[str, float]:
    return {name: float(np.quantile(values, q)) for name, q in qs.items()}


def _pcs_for(cumulative: np.ndarray, share: float) -> int:
    return int(np.searchsorted(cumulative, share - 1e-12) + 1)


def feature_stats(
    bags: BagCollection,
    *,
    instance_labels: np.ndarray | None = None,
    max_instances: int = 20_000,
    seed: int = 0,
) -> FeatureStats:
    """Measure the statistics listed in the module docstring.

    Args:
        bags: the dataset (features may be a memmap; only the sampled rows are read).
        instance_labels: (T,) ground-truth instance pattern ids (simulated/digit datasets), or None.
        max_instances: sample size for the feature statistics (bag sizes and slide means use all data).
        seed: sampling seed.
    """
    n_inst = int(bags.offsets[-1])
    rows = sample_rows(n_inst, max_instances, seed)
    x = np.asarray(bags.features[rows], dtype=np.float64)  # (n, D)
    mean, std = x.mean(axis=0), x.std(axis=0)
    centred = x - mean
    # Eigenvalues of the covariance from the singular values of the centred sample (no D × D matrix
    # needed when n < D, and better conditioned than eigvalsh of XᵀX).
    lam = np.linalg.svd(centred, compute_uv=False) ** 2 / max(len(x) - 1, 1)
    lam = np.sort(lam)[::-1]
    total = float(lam.sum())
    cumulative = np.cumsum(lam) / total if total > 0 else np.ones_like(lam)
    slide_means = np.stack([np.asarray(bags.bag(i), dtype=np.float64).mean(axis=0) for i in range(len(bags))])
    lengths = bags.lengths
    mmq = {"min": 0.0, "median": 0.5, "max": 1.0}
    return FeatureStats(
        n_slides=len(bags),
        n_instances=n_inst,
        dim=bags.dim,
        n_sampled=len(rows),
        bag_size={
            **_quantiles(lengths, {"min": 0.0, "p10": 0.1, "median": 0.5, "p90": 0.9, "max": 1.0}),
            "mean": float(lengths.mean()),
        },
        dim_mean=_quantiles(mean, mmq),
        dim_std=_quantiles(std, mmq),
        frac_negative=float((x < 0).mean()),
        frac_zero=float((x == 0).mean()),
        pc1_share=float(cumulative[0]),
        top10_share=float(cumulative[min(9, len(lam) - 1)]),
        top100_share=float(cumulative[min(99, len(lam) - 1)]),
        pcs_for_50=_pcs_for(cumulative, 0.5),
        pcs_for_90=_pcs_for(cumulative, 0.9),
        effective_rank=effective_rank(lam),
        pattern_variance_share=None
        if instance_labels is None
        else between_group_share(x, np.asarray(instance_labels)[rows]),
        slide_class_variance_share=between_group_share(slide_means, bags.fine_labels),
        eigenvalues=tuple(float(v) for v in lam[:200]),
        total_variance=total,
    )


def load_with_instance_labels(cfg: DataConfig) -> tuple[BagCollection, np.ndarray | None]:
    """The dataset of ``cfg`` and, where the data know it, each instance's ground-truth pattern.

    Simulated sets: the tissue pattern (``patterns.npy``); digit sets: the digit when it is 3, 4 or 5 (a
    Gleason pattern) and −1 for every other digit (benign tissue); anything else (real data): None.
    """
    if is_simulated(cfg.name):
        return load_dataset(cfg), instance_patterns(cfg)
    if cfg.name in ("mnist-panda", "digits-panda"):
        digit_bags = generate_digit_panda(cfg)
        digits = digit_bags.instance_digits
        return digit_bags.bags, np.where(np.isin(digits, (3, 4, 5)), digits, -1)
    return load_dataset(cfg), None
