"""The v2 feature model of the simulated datasets: instance features shaped like real patch embeddings.

Real patch features (CLAM's ResNet-50-trunc, foundation models) are averages of post-ReLU activations:
non-negative, with strongly correlated channels, a steep PCA spectrum (a compact intrinsic dimension)
and a label-relevant tissue signal that is a small part of their variance. The v1 model (`panda-sim-iso`)
adds isotropic σ = 1 noise to all D dimensions instead, so half its entries are negative and its
effective rank is ≈ 376. v2 keeps v1's latent tissue model (prototypes, purity, slide/case/site effects,
drawn exactly as in `benchmark.data.sim.core`) and changes how a latent instance becomes a feature vector::

    y = a_s · (g·B z + M u + N (ξ_i + η_c)) + o_s + b + σ·ε_D       pre-activation (D-dim)
    x = c · softplus(y)                                             feature, > 0 everywhere

with g = ``signal_gain`` (the strength of the label-relevant tissue pattern), M (D × m) an orthonormal
basis of m label-irrelevant "morphology" directions orthogonal to the signal and nuisance bases,
u_k ~ N(0, s_k²) with s_k² = ``morph_sd``² · k^(−α) (a power-law spectrum), b = ``bias`` (a negative
shift, so the softplus compresses most channels towards 0 like post-ReLU averages), σ small isotropic
noise and c = ``output_scale`` the overall magnitude (scale-free statistics such as the spectrum, the
effective rank and the pattern share do not depend on it; how fast a model learns does). Everything label-related (which patterns a slide holds, its label) is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.core.errors import ConfigError

__all__ = ["EmbeddingModel", "embed", "morphology_basis"]

# Stream of the morphology basis, spawned beside the space stream so v1's arrays are drawn unchanged.
MORPH_STREAM = (0, 1)


@dataclass(frozen=True)
class EmbeddingModel:
    """Parameters of the v2 feature model (module docstring).

    Attributes:
        signal_gain: g, multiplies the latent tissue signal B z (sets the pattern's variance share).
        morph_dim: m, number of label-irrelevant morphology directions.
        morph_alpha: α, variance of morphology direction k ∝ k^(−α).
        morph_sd: sd of the first morphology direction.
        bias: b, constant added to every pre-activation before the softplus.
        noise_sd: σ, isotropic noise in all D dimensions (small).
        output_scale: c, multiplies the softplus output.
    """

    signal_gain: float = 1.0
    morph_dim: int = 256
    morph_alpha: float = 1.0
    morph_sd: float = 8.0
    bias: float = -1.0
    noise_sd: float = 0.05
    output_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.morph_dim < 0 or self.morph_sd < 0 or self.noise_sd < 0 or self.signal_gain < 0:
            raise ConfigError("embedding: morph_dim, morph_sd, noise_sd and signal_gain must be ≥ 0.")
        if not self.output_scale > 0:
            raise ConfigError(f"embedding: output_scale must be > 0, got {self.output_scale}.")

    def morph_sds(self) -> np.ndarray:
        """(m,) standard deviations s_k = morph_sd · k^(−α/2), k = 1..m."""
        return self.morph_sd * np.arange(1, self.morph_dim + 1, dtype=np.float64) ** (-self.morph_alpha / 2)


def morphology_basis(rng: np.random.Generator, occupied: np.ndarray, m: int) -> np.ndarray:
    """(D, m) orthonormal basis orthogonal to the columns of ``occupied`` (D, r) (themselves orthonormal)."""
    d = occupied.shape[0]
    if m + occupied.shape[1] > d:
        raise ConfigError(
            f"embedding.morph_dim={m} does not fit in D={d} beside {occupied.shape[1]} other directions."
        )
    g = rng.standard_normal((d, m))
    occ = occupied.astype(np.float64)
    g -= occ @ (occ.T @ g)
    q, _ = np.linalg.qr(g)
    return q.astype(np.float32)


def embed(
    rng: np.random.Generator,
    signal: np.ndarray,
    shift: np.ndarray,
    model: EmbeddingModel,
    morph_t: np.ndarray,
    scale: float,
    offset: np.ndarray,
) -> np.ndarray:
    """Features (n, D) float32 of one slide's instances.

    Args:
        rng: the slide's generator (after the latent draws).
        signal: (n, D) B z of each instance.
        shift: (D,) N (ξ_i + η_c), the slide's and case's nuisance shift.
        model: the v2 parameters.
        morph_t: (m, D) transposed morphology basis Mᵀ.
        scale, offset: the site's a_s and o_s (D,).
    """
    n, d = signal.shape
    u = rng.standard_normal((n, model.morph_dim)) * model.morph_sds()
    y = model.signal_gain * signal + u.astype(np.float32) @ morph_t + shift[None, :]
    y = scale * y + offset + model.bias
    y += model.noise_sd * rng.standard_normal((n, d), dtype=np.float32)
    return (model.output_scale * np.logaddexp(0.0, y)).astype(np.float32)  # softplus, overflow-safe
