"""The ``panda-sim`` generator: prostate biopsies as bags of Gleason-pattern feature vectors.

Slide label rule (datasets-and-formats.md C2, applied to the generated composition, never copied
from the target): primary = most frequent Gleason pattern (ties → higher grade); secondary = the
highest-grade *other* pattern present (needle-biopsy convention), or the primary if it is alone;
ISUP from the Gleason score by the standard table. Then a fixed share of slides is moved to an
adjacent ISUP grade (label noise).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from benchmark.data.sim.core import (
    PLAN_STREAM,
    SPACE_STREAM,
    FeatureSpace,
    SlidePlan,
    adjacent_label_noise,
    bag_sizes,
    make_basis,
    quota_assign,
    rng_for,
)

__all__ = [
    "GLEASON_TO_ISUP",
    "PANDA_PATTERNS",
    "PandaSimParams",
    "gleason_score",
    "isup_grade",
    "panda_plan",
    "panda_space",
]

PANDA_PATTERNS = ("benign-stroma", "benign-gland", "benign-other", "gleason-3", "gleason-4", "gleason-5")
_N_BENIGN = 3
_G = {3: 3, 4: 4, 5: 5}  # Gleason pattern → pattern index in PANDA_PATTERNS

GLEASON_TO_ISUP: dict[tuple[int, int], int] = {
    (0, 0): 0,
    (3, 3): 1,
    (3, 4): 2,
    (4, 3): 3,
    (4, 4): 4,
    (3, 5): 4,
    (5, 3): 4,
    (4, 5): 5,
    (5, 4): 5,
    (5, 5): 5,
}
# The Gleason scores that make up each ISUP grade; a slide's target score is drawn uniformly among them.
_SCORES_OF_GRADE = {g: [s for s, v in GLEASON_TO_ISUP.items() if v == g] for g in range(6)}

# Slides per ISUP grade 0..5 in PANDA's train.csv, per provider (karolinska 5,456, radboud 5,160 slides).
_PANDA_COUNTS = {
    "karolinska": (1925, 1814, 668, 317, 481, 251),
    "radboud": (967, 852, 675, 925, 768, 973),
}


def gleason_score(c3: int, c4: int, c5: int) -> tuple[int, int]:
    """(primary, secondary) Gleason pattern from the instance counts of patterns 3, 4 and 5; (0, 0) if benign.

    Example: mostly 3 with some 4 → (3, 4); mostly 3 with some 4 and a few 5 → (3, 5).
    """
    counts = {3: int(c3), 4: int(c4), 5: int(c5)}
    present = [g for g in (3, 4, 5) if counts[g] > 0]
    if not present:
        return 0, 0
    primary = max(present, key=lambda g: (counts[g], g))  # ties go to the higher grade
    others = [g for g in present if g != primary]
    return primary, (max(others) if others else primary)


def isup_grade(primary: int, secondary: int) -> int:
    """ISUP grade group of a Gleason score (0+0 → 0, 3+3 → 1, 3+4 → 2, 4+3 → 3, 8 → 4, 9–10 → 5)."""
    try:
        return GLEASON_TO_ISUP[(int(primary), int(secondary))]
    except KeyError:
        raise ValueError(f"{primary}+{secondary} is not a Gleason score of the ISUP table") from None


@dataclass(frozen=True)
class PandaSimParams:
    """Generator parameters of ``panda-sim`` (defaults = scale 1, the calibrated demo set).

    Attributes:
        n_slides: slides.
        dim: feature dimension D.
        latent_dim, nuisance_dim: r and r_n (signal and nuisance subspaces).
        bag_median, bag_sigma, bag_min, bag_max: lognormal bag size, clipped.
        providers, provider_share: site names and their slide shares.
        tumour_beta: Beta(a, b) of the tumour fraction f of a cancer slide; clipped to tumour_frac.
        min_tumour: at least this many tumour instances in a cancer slide.
        secondary_share: U(lo, hi) share of the secondary pattern in the tumour (hi ≤ 0.5).
        tertiary_prob, tertiary_max: chance of adding 1..tertiary_max instances of a missing pattern.
        benign_spread: norm of the benign-tissue prototypes (orthogonal to the tumour axes).
        tumour_sep: distance of the tumour prototypes from the benign plane.
        d34, d45: prototype distances Gleason 3 → 4 (axis 1) and 4 → 5 (axis 2).
        within_sd, noise_sd, slide_shift_sd, purity_min: see `benchmark.data.sim.core.FeatureSpace`.
        provider_shift_sd, provider_scale: site offset sd and per-site scale.
        label_noise: share of slides moved to an adjacent ISUP grade.
    """

    n_slides: int = 240
    dim: int = 1024
    latent_dim: int = 32
    nuisance_dim: int = 16
    bag_median: float = 10.0
    bag_sigma: float = 0.5
    bag_min: int = 4
    bag_max: int = 96
    providers: tuple[str, ...] = ("karolinska", "radboud")
    provider_share: tuple[float, ...] = (0.514, 0.486)
    tumour_beta: tuple[float, float] = (2.0, 3.0)
    tumour_frac: tuple[float, float] = (0.05, 0.9)
    min_tumour: int = 3
    secondary_share: tuple[float, float] = (0.1, 0.5)
    tertiary_prob: float = 0.1
    tertiary_max: int = 2
    benign_spread: float = 2.0
    tumour_sep: float = 5.0
    d34: float = 5.0
    d45: float = 4.0
    within_sd: float = 0.5
    noise_sd: float = 1.0
    slide_shift_sd: float = 1.0
    purity_min: float = 0.7
    provider_shift_sd: float = 0.3
    provider_scale: tuple[float, ...] = (1.0, 1.15)
    label_noise: float = 0.06

    def scaled(self, scale: float) -> PandaSimParams:
        """Slides × scale; for scale > 1 also bag median and cap × √scale (PANDA-sized bags at scale ≈ 21)."""
        bag = max(1.0, scale) ** 0.5
        return dataclasses.replace(
            self,
            n_slides=int(round(self.n_slides * scale)),
            bag_median=self.bag_median * bag,
            bag_max=int(round(self.bag_max * bag)),
        )


def panda_space(p: PandaSimParams, seed: int) -> FeatureSpace:
    """Prototypes: 3 benign tissue types, then Gleason 3, 4, 5 (3 → 4 and 4 → 5 orthogonal steps)."""
    rng = rng_for(seed, SPACE_STREAM)
    basis, nuisance = make_basis(rng, p.dim, p.latent_dim, p.nuisance_dim)
    protos = np.zeros((len(PANDA_PATTERNS), p.latent_dim), dtype=np.float64)
    for b in range(_N_BENIGN):
        v = rng.standard_normal(p.latent_dim - 3)
        protos[b, 3:] = p.benign_spread * v / np.linalg.norm(v)
    # Axis 0 separates tumour from benign; 3 → 4 moves along axis 1, 4 → 5 along axis 2 (pattern 5 is
    # its own direction, so a 3+5 mixture does not average into a look-alike of 4+4).
    protos[_G[3], :3] = (p.tumour_sep, 0.0, 0.0)
    protos[_G[4], :3] = (p.tumour_sep, p.d34, 0.0)
    protos[_G[5], :3] = (p.tumour_sep, p.d34, p.d45)
    return FeatureSpace(
        prototypes=protos,
        lesion=np.array([False] * _N_BENIGN + [True] * 3),
        basis=basis,
        nuisance=nuisance,
        site_offset=(p.provider_shift_sd * rng.standard_normal((len(p.providers), p.dim))).astype(np.float32),
        site_scale=np.asarray(p.provider_scale, dtype=np.float32),
        within_sd=p.within_sd,
        noise_sd=p.noise_sd,
        slide_shift_sd=p.slide_shift_sd,
        case_shift_sd=0.0,
        purity_min=p.purity_min,
    )


def panda_plan(p: PandaSimParams, seed: int) -> SlidePlan:
    """Draw each slide's provider, target score, size and pattern counts; label from the counts."""
    rng = rng_for(seed, PLAN_STREAM)
    priors = np.array(
        [np.asarray(_PANDA_COUNTS.get(name, _PANDA_COUNTS["radboud"]), float) for name in p.providers]
    )
    joint = (np.asarray(p.provider_share)[:, None] * priors / priors.sum(axis=1, keepdims=True)).ravel()
    cell = quota_assign(rng, p.n_slides, joint)
    sites, target = cell // 6, cell % 6
    sizes = bag_sizes(rng, p.n_slides, p.bag_median, p.bag_sigma, p.bag_min, p.bag_max)
    counts = np.zeros((p.n_slides, len(PANDA_PATTERNS)), dtype=np.int64)
    clean = np.zeros(p.n_slides, dtype=np.int64)
    for i in range(p.n_slides):
        n, tumour = int(sizes[i]), np.zeros(6, dtype=np.int64)  # tumour[g] for g = 3, 4, 5
        if target[i] > 0:
            scores = _SCORES_OF_GRADE[int(target[i])]
            prim, sec = scores[rng.integers(len(scores))]
            f = float(np.clip(rng.beta(*p.tumour_beta), *p.tumour_frac))
            t = int(np.clip(round(f * n), p.min_tumour, n - 1))
            if prim == sec:
                tumour[prim] = t
            else:
                # n_s ≤ (t − 1) // 2 keeps the primary strictly the most frequent pattern.
                n_sec = int(np.clip(round(rng.uniform(*p.secondary_share) * t), 1, (t - 1) // 2))
                tumour[sec], tumour[prim] = n_sec, t - n_sec
            if rng.random() < p.tertiary_prob:
                third = int(rng.choice([g for g in (3, 4, 5) if tumour[g] == 0]))
                m = int(rng.integers(1, p.tertiary_max + 1))
                if n - t - m >= 1 and tumour[prim] > m:
                    tumour[third] = m
        n_benign = n - int(tumour[3:].sum())
        counts[i, :_N_BENIGN] = rng.multinomial(n_benign, rng.dirichlet(np.ones(_N_BENIGN)))
        counts[i, _N_BENIGN:] = tumour[3:]
        clean[i] = isup_grade(*gleason_score(*tumour[3:]))
    labels = adjacent_label_noise(rng, clean, p.label_noise, 6)
    return SlidePlan(
        counts=counts, labels=labels, clean_labels=clean, sites=sites, cases=np.arange(p.n_slides)
    )
