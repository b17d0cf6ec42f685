"""Shared machinery of the simulated datasets: feature space, slide plans and the memmap writer.

A simulated dataset is made in two passes so that it stays memory-bounded at any scale:

1. **Plan** (O(S) memory): per slide, how many instances of each tissue pattern it holds, its site,
   its case and its label. Cheap; drawn by `benchmark.data.sim.panda` and `.bracs`.
2. **Features** (O(largest bag) memory): `write_features` fills a ``.npy`` memmap slide by slide.
   Slide i draws from its own generator ``SeedSequence(seed, spawn_key=(FEATURE_STREAM, i))`` so a
   bag's features depend only on (seed, i, its plan) and never on chunking or on the other slides.

Instance model, for an instance of pattern k in slide i of case c at site s::

    z = w·μ_k + (1 − w)·μ_b + σ_w·ε_r          latent (r-dim); w ~ U(purity_min, 1) for lesion patterns
                                                (μ_b: a background pattern of the same slide), w = 1 otherwise
    x = a_s · (B z + N (ξ_i + η_c) + σ·ε_D) + o_s      features (D-dim)

with B (D × r) and N (D × r_n) orthonormal (signal and nuisance subspaces), ξ_i ~ N(0, σ_slide² I)
a per-slide stain-like shift, η_c ~ N(0, σ_case² I) a per-case shift, a_s / o_s the site scale and
offset (o_s ~ N(0, σ_site² I_D), so it also moves the class prototypes), and ε isotropic noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.data.sim.embed import MORPH_STREAM, EmbeddingModel, embed, morphology_basis

__all__ = [
    "FeatureSpace",
    "SlidePlan",
    "adjacent_label_noise",
    "bag_sizes",
    "make_basis",
    "quota_assign",
    "rng_for",
    "write_features",
]

# Independent random streams of one dataset seed (SeedSequence spawn keys).
SPACE_STREAM, PLAN_STREAM, FEATURE_STREAM, CASE_STREAM = 0, 1, 2, 3


def rng_for(seed: int, *key: int) -> np.random.Generator:
    """A generator for one stream (and item) of a dataset seed, e.g. ``rng_for(seed, FEATURE_STREAM, i)``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


@dataclass(frozen=True)
class FeatureSpace:
    """Everything shared by all bags of a dataset.

    Attributes:
        prototypes: (P, r) latent pattern centres μ_k.
        lesion: (P,) bool, patterns whose instances are mixed with background (impure patches).
        basis: (D, r) orthonormal signal basis B.
        nuisance: (D, r_n) orthonormal nuisance basis N (orthogonal to B).
        site_offset: (n_sites, D) offsets o_s.
        site_scale: (n_sites,) scales a_s.
        within_sd: σ_w, latent within-pattern noise.
        noise_sd: σ, isotropic noise in all D dimensions.
        slide_shift_sd: σ_slide, per-slide shift in the nuisance subspace.
        case_shift_sd: σ_case, per-case shift in the nuisance subspace.
        purity_min: lower bound of the lesion mixing weight w.
    """

    prototypes: np.ndarray
    lesion: np.ndarray
    basis: np.ndarray
    nuisance: np.ndarray
    site_offset: np.ndarray
    site_scale: np.ndarray
    within_sd: float
    noise_sd: float
    slide_shift_sd: float
    case_shift_sd: float
    purity_min: float


@dataclass(frozen=True)
class SlidePlan:
    """Per-slide composition and labels (no features yet).

    Attributes:
        counts: (S, P) int64 instances of each pattern per slide.
        labels: (S,) int64 observed fine labels (after label noise).
        clean_labels: (S,) int64 labels implied by the composition (noise-free).
        sites: (S,) int64 site index.
        cases: (S,) int64 case (patient) index.
    """

    counts: np.ndarray
    labels: np.ndarray
    clean_labels: np.ndarray
    sites: np.ndarray
    cases: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return self.counts.sum(axis=1)


def make_basis(
    rng: np.random.Generator, dim: int, latent_dim: int, nuisance_dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """Random orthonormal signal (D, r) and nuisance (D, r_n) bases, mutually orthogonal."""
    q, _ = np.linalg.qr(rng.standard_normal((dim, latent_dim + nuisance_dim)))
    return q[:, :latent_dim].astype(np.float32), q[:, latent_dim:].astype(np.float32)


def bag_sizes(rng: np.random.Generator, n: int, median: float, sigma: float, lo: int, hi: int) -> np.ndarray:
    """(n,) int64 lognormal bag sizes with the given median, clipped to [lo, hi]."""
    return np.clip(np.rint(rng.lognormal(np.log(median), sigma, size=n)), lo, hi).astype(np.int64)


def quota_assign(rng: np.random.Generator, n: int, shares: np.ndarray) -> np.ndarray:
    """(n,) cell indices with counts n·shares rounded by largest remainder, in random order.

    Quotas instead of i.i.d. draws keep every class present even in tiny test-scale datasets.
    """
    shares = np.asarray(shares, dtype=np.float64) / np.sum(shares)
    raw = shares * n
    counts = np.floor(raw).astype(np.int64)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return rng.permutation(np.repeat(np.arange(len(shares)), counts))


def adjacent_label_noise(
    rng: np.random.Generator, labels: np.ndarray, rate: float, n_classes: int
) -> np.ndarray:
    """Move a ``rate`` share of labels (exactly round(rate·S) slides) to an adjacent class (±1, inward at the ends)."""
    labels = labels.copy()
    n_flip = int(round(rate * len(labels)))
    idx = rng.choice(len(labels), size=n_flip, replace=False)
    step = rng.choice([-1, 1], size=n_flip)
    moved = labels[idx] + step
    moved = np.where(moved < 0, 1, np.where(moved >= n_classes, n_classes - 2, moved))
    labels[idx] = moved
    return labels


def write_features(
    out_dir: Path,
    space: FeatureSpace,
    plan: SlidePlan,
    seed: int,
    *,
    background: Sequence[int],
    dtype: type = np.float16,
    embedding: EmbeddingModel | None = None,
) -> np.ndarray:
    """Write ``features.npy`` (T, D) and ``patterns.npy`` (T,) int8 into ``out_dir``, slide by slide.

    Args:
        out_dir: an existing (temporary) directory.
        space: the shared feature space.
        plan: the slide plan; bag i gets ``plan.counts[i].sum()`` instances.
        seed: dataset seed (per-slide streams are spawned from it).
        background: pattern indices a lesion instance may be mixed with.
        dtype: storage dtype of the features.
        embedding: the v2 feature model (`benchmark.data.sim.embed`), or None for v1 (isotropic noise, no
            softplus).

    Returns:
        (S + 1,) int64 offsets.
    """
    lengths = plan.lengths
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    dim = space.basis.shape[0]
    feats = np.lib.format.open_memmap(
        out_dir / "features.npy", mode="w+", dtype=dtype, shape=(int(offsets[-1]), dim)
    )
    pats = np.lib.format.open_memmap(
        out_dir / "patterns.npy", mode="w+", dtype=np.int8, shape=(int(offsets[-1]),)
    )
    case_shift = _case_shifts(space, plan, seed)
    bg = np.asarray(background, dtype=np.int64)
    basis_t = np.ascontiguousarray(space.basis.T)  # (r, D); a transposed view is ~10x slower in matmul here
    morph_t = None
    if embedding is not None:
        occupied = np.hstack([space.basis, space.nuisance])
        morph_t = np.ascontiguousarray(
            morphology_basis(rng_for(seed, *MORPH_STREAM), occupied, embedding.morph_dim).T
        )
    for i in range(len(lengths)):
        # One generator per slide, drawn in a fixed order: patterns, latents, lesion mixing, shift, noise.
        rng = rng_for(seed, FEATURE_STREAM, i)
        pat, z = _latent_instances(rng, space, plan.counts[i], bg)
        shift = (
            space.slide_shift_sd * rng.standard_normal(space.nuisance.shape[1]) + case_shift[plan.cases[i]]
        )
        signal = z.astype(np.float32) @ basis_t
        nuisance = space.nuisance @ shift.astype(np.float32)
        feats[offsets[i] : offsets[i + 1]] = _observed(
            rng, signal, nuisance, space, plan.sites[i], embedding, morph_t
        )
        pats[offsets[i] : offsets[i + 1]] = pat
    feats.flush()
    pats.flush()
    del feats, pats
    return offsets


def _case_shifts(space: FeatureSpace, plan: SlidePlan, seed: int) -> np.ndarray:
    """(n_cases, r_n) per-case nuisance shifts η_c, each case from its own stream."""
    n_cases = int(plan.cases.max()) + 1 if len(plan.cases) else 0
    r_n = space.nuisance.shape[1]
    return (
        np.stack([rng_for(seed, CASE_STREAM, c).standard_normal(r_n) for c in range(n_cases)])
        * space.case_shift_sd
    )


def _latent_instances(
    rng: np.random.Generator, space: FeatureSpace, counts: np.ndarray, bg: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One slide's patterns (N,), in random order, and latents z (N, r); ``counts``: (P,) per pattern."""
    pat = rng.permutation(np.repeat(np.arange(space.prototypes.shape[0]), counts))
    z = space.prototypes[pat] + space.within_sd * rng.standard_normal((len(pat), space.prototypes.shape[1]))
    is_lesion = space.lesion[pat]
    if is_lesion.any():
        # Impure patches: a lesion instance is pulled towards a background pattern of its own slide.
        bg_counts = counts[bg].astype(np.float64)
        p_bg = bg_counts / bg_counts.sum() if bg_counts.sum() > 0 else np.full(len(bg), 1.0 / len(bg))
        m = int(is_lesion.sum())
        w = rng.uniform(space.purity_min, 1.0, size=(m, 1))
        mix = space.prototypes[rng.choice(bg, size=m, p=p_bg)]
        z[is_lesion] = (
            w * space.prototypes[pat[is_lesion]]
            + (1.0 - w) * mix
            + (z[is_lesion] - space.prototypes[pat[is_lesion]])
        )
    return pat, z


def _observed(
    rng: np.random.Generator,
    signal: np.ndarray,
    nuisance: np.ndarray,
    space: FeatureSpace,
    site: int,
    embedding: EmbeddingModel | None,
    morph_t: np.ndarray | None,
) -> np.ndarray:
    """Features (N, D) from the signal (N, D) and the slide's nuisance shift (D,), at ``site``."""
    if embedding is None:  # v1 (the -iso datasets): isotropic noise in every dimension
        x = signal + nuisance[None, :]
        x += space.noise_sd * rng.standard_normal(x.shape, dtype=np.float32)
        return space.site_scale[site] * x + space.site_offset[site]
    return embed(rng, signal, nuisance, embedding, morph_t, space.site_scale[site], space.site_offset[site])
