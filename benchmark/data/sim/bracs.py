"""The ``bracs-sim`` generator: breast slides as bags of lesion-subtype feature vectors, several per patient.

Slide label rule: the most severe lesion present (N < PB < UDH < FEA < ADH < DCIS < IC), N when the
slide holds only normal tissue. Slides of one patient share a feature shift and have similar
severities, so a split that separates slides but not patients leaks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
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

__all__ = ["BRACS_PATTERNS", "BRACS_SUBTYPES", "BracsSimParams", "bracs_label", "bracs_plan", "bracs_space"]

BRACS_SUBTYPES = ("N", "PB", "UDH", "FEA", "ADH", "DCIS", "IC")  # severity order = fine label order
_N_NORMAL = 3
BRACS_PATTERNS = ("normal-stroma", "normal-adipose", "normal-duct", *BRACS_SUBTYPES[1:])
# WSIs per subtype in BRACS (official train + val + test, 547 slides from 189 patients).
_BRACS_COUNTS = (44, 147, 74, 41, 48, 61, 132)


def bracs_label(lesion_counts: Sequence[int]) -> int:
    """Fine label (0 = N … 6 = IC) from instance counts of the lesions PB, UDH, FEA, ADH, DCIS, IC: the worst present."""
    present = [k + 1 for k, c in enumerate(lesion_counts) if c > 0]
    return max(present, default=0)


@dataclass(frozen=True)
class BracsSimParams:
    """Generator parameters of ``bracs-sim`` (defaults = scale 1, BRACS-sized).

    Attributes:
        n_slides, n_patients: slides and patients (each patient has ≥ 1 slide).
        dim, latent_dim, nuisance_dim: D, r, r_n.
        bag_median, bag_sigma, bag_min, bag_max: lognormal bag size, clipped.
        patient_mix_sd: slides are sorted by severity + N(0, sd²) and cut into patients; smaller = more
            similar labels within a patient.
        lesion_beta, lesion_frac: Beta(a, b) share of the defining lesion, clipped.
        min_lesion: at least this many instances of the defining lesion.
        lower_prob, lower_max: each milder lesion is also present with this chance (1..lower_max instances).
        normal_spread: norm of the normal-tissue prototypes.
        lesion_pos: position of PB … IC along the severity axis (close pairs are the hard ones).
        lesion_jitter: norm of each lesion's own random offset from that axis.
        within_sd, noise_sd, slide_shift_sd, purity_min: see `benchmark.data.sim.core.FeatureSpace`.
        patient_shift_sd: per-patient shift in the nuisance subspace.
        site_shift_sd: offset of the single scanner site.
        label_noise: share of slides moved to an adjacent subtype.
    """

    n_slides: int = 547
    n_patients: int = 189
    dim: int = 1024
    latent_dim: int = 32
    nuisance_dim: int = 16
    bag_median: float = 24.0
    bag_sigma: float = 0.5
    bag_min: int = 8
    bag_max: int = 256
    patient_mix_sd: float = 1.0
    lesion_beta: tuple[float, float] = (1.5, 4.0)
    lesion_frac: tuple[float, float] = (0.03, 0.8)
    min_lesion: int = 2
    lower_prob: float = 0.3
    lower_max: int = 3
    normal_spread: float = 2.0
    lesion_pos: tuple[float, ...] = (1.4, 2.3, 3.4, 4.1, 5.1, 6.5)
    lesion_jitter: float = 1.4
    within_sd: float = 0.5
    noise_sd: float = 1.0
    slide_shift_sd: float = 1.0
    patient_shift_sd: float = 0.7
    purity_min: float = 0.7
    site_shift_sd: float = 0.3
    label_noise: float = 0.06

    def scaled(self, scale: float) -> BracsSimParams:
        """Slides and patients × scale; for scale > 1 also bag median and cap × √scale."""
        bag = max(1.0, scale) ** 0.5
        n_slides = int(round(self.n_slides * scale))
        return dataclasses.replace(
            self,
            n_slides=n_slides,
            n_patients=max(1, min(n_slides, int(round(self.n_patients * scale)))),
            bag_median=self.bag_median * bag,
            bag_max=int(round(self.bag_max * bag)),
        )


def bracs_space(p: BracsSimParams, seed: int) -> FeatureSpace:
    """Prototypes: 3 normal tissue types, then the 6 lesions along a severity axis with their own jitter."""
    rng = rng_for(seed, SPACE_STREAM)
    basis, nuisance = make_basis(rng, p.dim, p.latent_dim, p.nuisance_dim)
    protos = np.zeros((len(BRACS_PATTERNS), p.latent_dim), dtype=np.float64)
    half = p.latent_dim // 2
    for b in range(_N_NORMAL):
        v = rng.standard_normal(p.latent_dim - half)
        protos[b, half:] = p.normal_spread * v / np.linalg.norm(v)
    for k, pos in enumerate(p.lesion_pos):
        v = rng.standard_normal(half - 1)
        protos[_N_NORMAL + k, 0] = pos  # axis 0 = severity
        protos[_N_NORMAL + k, 1:half] = p.lesion_jitter * v / np.linalg.norm(v)
    return FeatureSpace(
        prototypes=protos,
        lesion=np.array([False] * _N_NORMAL + [True] * len(p.lesion_pos)),
        basis=basis,
        nuisance=nuisance,
        site_offset=(p.site_shift_sd * rng.standard_normal((1, p.dim))).astype(np.float32),
        site_scale=np.ones(1, dtype=np.float32),
        within_sd=p.within_sd,
        noise_sd=p.noise_sd,
        slide_shift_sd=p.slide_shift_sd,
        case_shift_sd=p.patient_shift_sd,
        purity_min=p.purity_min,
    )


def _patients(rng: np.random.Generator, target: np.ndarray, n_patients: int, mix_sd: float) -> np.ndarray:
    """(S,) patient index: slides sorted by noisy severity, cut into runs of 1 + Multinomial sizes."""
    s = len(target)
    sizes = 1 + rng.multinomial(s - n_patients, np.full(n_patients, 1.0 / n_patients))
    order = np.argsort(target + mix_sd * rng.standard_normal(s), kind="stable")
    cases = np.empty(s, dtype=np.int64)
    cases[order] = np.repeat(rng.permutation(n_patients), sizes)  # shuffled ids: no label order in ids
    return cases


def bracs_plan(p: BracsSimParams, seed: int) -> SlidePlan:
    """Draw each slide's subtype (exact BRACS proportions), patient, size and lesion counts."""
    rng = rng_for(seed, PLAN_STREAM)
    target = quota_assign(rng, p.n_slides, np.asarray(_BRACS_COUNTS, dtype=float))
    cases = _patients(rng, target, p.n_patients, p.patient_mix_sd)
    sizes = bag_sizes(rng, p.n_slides, p.bag_median, p.bag_sigma, p.bag_min, p.bag_max)
    counts = np.zeros((p.n_slides, len(BRACS_PATTERNS)), dtype=np.int64)
    clean = np.zeros(p.n_slides, dtype=np.int64)
    for i in range(p.n_slides):
        n, k = int(sizes[i]), int(target[i])
        lesions = np.zeros(len(p.lesion_pos), dtype=np.int64)
        if k > 0:
            f = float(np.clip(rng.beta(*p.lesion_beta), *p.lesion_frac))
            lesions[k - 1] = int(np.clip(round(f * n), p.min_lesion, n - 1))
            for j in range(k - 1):  # milder lesions co-occur; they never change the label
                if rng.random() < p.lower_prob:
                    m = int(rng.integers(1, p.lower_max + 1))
                    if n - lesions.sum() - m >= 1:
                        lesions[j] = m
        counts[i, :_N_NORMAL] = rng.multinomial(n - int(lesions.sum()), rng.dirichlet(np.ones(_N_NORMAL)))
        counts[i, _N_NORMAL:] = lesions
        clean[i] = bracs_label(lesions)
    labels = adjacent_label_noise(rng, clean, p.label_noise, len(BRACS_SUBTYPES))
    return SlidePlan(
        counts=counts, labels=labels, clean_labels=clean, sites=np.zeros(p.n_slides, np.int64), cases=cases
    )
