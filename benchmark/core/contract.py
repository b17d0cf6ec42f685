"""The one model contract every MIL method implements.

``forward(x (B, N, D) float, mask (B, N) bool, targets=None) -> MILOutput``

* ``mask`` is True on real instances; padded rows must never change a result.
* ``targets`` (a `Targets`) is given only in training when a model needs labels inside its forward
  (CLAM's instance loss, HMIL's alignment losses); such terms are returned by name in
  ``MILOutput.aux_losses`` and weighted by the harness, never by the model.
* Flags never change the return type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from benchmark.core.errors import BenchmarkError

__all__ = ["MILModel", "MILOutput", "Targets", "masked_softmax"]


@dataclass
class Targets:
    """Labels for a batch of bags, plus training progress.

    Attributes:
        fine: (B,) long fine labels.
        coarse: (B,) long coarse labels, or None.
        progress: e / E in [0, 1) — the 0-based epoch over the configured epochs — for models whose
            auxiliary terms change during training (e.g. a temperature schedule); None outside training.
    """

    fine: torch.Tensor
    coarse: torch.Tensor | None = None
    progress: float | None = None


@dataclass
class MILOutput:
    """What every model returns.

    Attributes:
        logits: (B, K_f) fine-class logits.
        coarse_logits: (B, K_c) logits of a model's own coarse head, or None.
        attention: (B, H, N) attention over instances (padded positions 0), or None.
        embeddings: (B, ...) bag embeddings, or None.
        aux_losses: named scalar loss terms; filled only in training when targets are given.
    """

    logits: torch.Tensor
    coarse_logits: torch.Tensor | None = None
    attention: torch.Tensor | None = None
    embeddings: torch.Tensor | None = None
    aux_losses: dict[str, torch.Tensor] = field(default_factory=dict)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax over real instances only, computed in fp32.

    Args:
        scores: (..., N) raw scores.
        mask: boolean, broadcastable to ``scores``; True on real instances.

    Padded positions get exactly 0. A row with no real instance returns all zeros instead of NaN
    (such bags are rejected at load time; this only keeps padded batch rows finite).
    """
    scores = scores.float().masked_fill(~mask, float("-inf"))
    any_real = mask.any(dim=dim, keepdim=True)
    # Replace all -inf rows by 0 before softmax so they do not produce NaN, then zero them out.
    safe = torch.where(any_real, scores, torch.zeros_like(scores))
    return torch.softmax(safe, dim=dim) * any_real * mask


class MILModel(nn.Module):
    """Base class: validates inputs at the boundary, then calls `_forward`.

    Subclasses set ``permutation_invariant`` and implement ``_forward(x, mask, targets)``.
    """

    permutation_invariant: bool = True

    def __init__(self, *, in_dim: int, n_classes: int) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.n_classes = n_classes

    def forward(self, x: torch.Tensor, mask: torch.Tensor, targets: Targets | None = None) -> MILOutput:
        if x.dim() != 3:
            raise BenchmarkError(
                f"{type(self).__name__}: features must be (B, N, D), got shape {tuple(x.shape)}."
            )
        if x.shape[-1] != self.in_dim:
            raise BenchmarkError(
                f"{type(self).__name__}: feature width {x.shape[-1]} differs from the model's in_dim={self.in_dim}."
            )
        if mask.shape != x.shape[:2] or mask.dtype != torch.bool:
            raise BenchmarkError(
                f"{type(self).__name__}: mask must be bool of shape {tuple(x.shape[:2])}, "
                f"got {mask.dtype} {tuple(mask.shape)}."
            )
        return self._forward(x, mask, targets)

    def _forward(self, x: torch.Tensor, mask: torch.Tensor, targets: Targets | None) -> MILOutput:
        raise NotImplementedError
