"""Simple pooling baselines: an instance embedding, masked mean or max over instances, a linear head.

::

    h_i = Dropout(ReLU(W_1 x_i + b_1))        (B, N, 512)
    z   = mean_i h_i   or   max_i h_i          over real instances only
    logits = W_c z + b_c                       (B, C)

They set the floor any attention model must beat.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from benchmark.core.contract import MILModel, MILOutput, Targets
from benchmark.core.hierarchy import Hierarchy
from benchmark.models import register_model

__all__ = ["PoolingConfig", "PoolingMIL"]


@dataclass(frozen=True)
class PoolingConfig:
    """Attributes:
    hidden_dim: embedding width.
    dropout: dropout after the embedding layer.
    """

    hidden_dim: int = 512
    dropout: float = 0.25


class PoolingMIL(MILModel):
    """Embedding + masked mean/max pooling + linear head."""

    permutation_invariant = True
    pooling = "mean"

    def __init__(self, config: PoolingConfig, *, in_dim: int, hierarchy: Hierarchy) -> None:
        super().__init__(in_dim=in_dim, n_classes=hierarchy.n_fine)
        self.config = config
        self.embed = nn.Sequential(
            nn.Linear(in_dim, config.hidden_dim), nn.ReLU(), nn.Dropout(config.dropout)
        )
        self.classifier = nn.Linear(config.hidden_dim, hierarchy.n_fine)

    def _forward(self, x: torch.Tensor, mask: torch.Tensor, targets: Targets | None) -> MILOutput:
        h = self.embed(x)  # (B, N, M)
        m = mask.unsqueeze(-1)  # (B, N, 1)
        if self.pooling == "mean":
            z = (h * m).sum(1) / m.sum(1).clamp(min=1)
        else:
            # -inf on padding so it never wins; an all-padding row (never produced by loaders) gives 0.
            z = h.masked_fill(~m, float("-inf")).amax(1)
            z = torch.where(mask.any(1, keepdim=True), z, torch.zeros_like(z))
        return MILOutput(logits=self.classifier(z), embeddings=z)


@register_model("meanpool", config=PoolingConfig, description="Instance embedding + masked mean pooling")
class MeanPoolMIL(PoolingMIL):
    pooling = "mean"


@register_model("maxpool", config=PoolingConfig, description="Instance embedding + masked max pooling")
class MaxPoolMIL(PoolingMIL):
    pooling = "max"
