"""Smooth top-1 multi-class SVM loss (Berrada, Zisserman & Kumar, ICLR 2018), CLAM's instance loss.

Written from the equations of baselines.md §3.3 (the reference package ``smooth-topk`` is not on PyPI).
For logits x ∈ R^K, target t, margin α and temperature τ::

    Δ_j    = α · 1[j ≠ t]
    smooth  ℓ_s(x, t) = τ · log Σ_j exp((x_j + Δ_j − x_t) / τ)
    hard    ℓ_h(x, t) = max_j (x_j + Δ_j) − x_t

Per sample, the hard form is used when the gap between the two largest *raw* logits is at least
τ · ln(1000): there the smooth form is numerically indistinguishable from the hard one (within
τ · ln(1 + 1e-3) or so) and its exponentials are the ones that can overflow in low precision.
With K = 2 and τ = 1, ℓ_s(x, t) = softplus(x_{1−t} − x_t + 1): a logistic loss with a unit margin.
"""

from __future__ import annotations

import math

import torch

__all__ = ["HARD_THRESHOLD", "smooth_top1_svm"]

# The reference switches to the hard loss when the smooth one would differ by less than ~1/1000.
HARD_THRESHOLD = math.log(1000.0)


def smooth_top1_svm(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    alpha: float = 1.0,
    tau: float = 1.0,
    reduction: str = "none",
) -> torch.Tensor:
    """Smooth top-1 SVM loss with the per-sample hard switch.

    Args:
        logits: (..., K) raw scores, K ≥ 2.
        targets: (...) long class indices in [0, K).
        alpha: margin α.
        tau: temperature τ > 0.
        reduction: "none" → (...) per-sample losses; "mean" → the sum over samples divided by their
            number (the reference's reduction); "sum".

    Returns:
        The per-sample losses (...) or a scalar, computed in fp32.
    """
    if logits.shape[-1] < 2:
        raise ValueError(
            f"smooth_top1_svm needs at least 2 classes, got logits of shape {tuple(logits.shape)}"
        )
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    x = logits.float()
    t = targets.long().unsqueeze(-1)
    x_t = x.gather(-1, t)  # (..., 1)
    margin = torch.full_like(x, alpha).scatter(-1, t, 0.0)  # Δ_j
    augmented = x + margin - x_t  # (x_j + Δ_j − x_t); 0 at j = t
    smooth = tau * torch.logsumexp(augmented / tau, dim=-1)
    hard = augmented.max(dim=-1).values
    top2 = x.topk(2, dim=-1).values
    use_hard = (top2[..., 0] - top2[..., 1]) >= tau * HARD_THRESHOLD
    loss = torch.where(use_hard, hard, smooth)
    if reduction == "mean":
        return loss.mean() if loss.numel() else loss.sum()
    if reduction == "sum":
        return loss.sum()
    return loss
