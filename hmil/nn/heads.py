"""Classifier heads over class-wise bag embeddings B (B, K, M): shared scalar head or one head per class."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ClassWiseLinear", "build_head"]


class ClassWiseLinear(nn.Module):
    """One linear head per class: z[k] = w_k · B[k] + b_k (not in HMIL; the ``hmil-pc`` variant).

    Args:
        in_dim: embedding width M.
        n_classes: K; row k of the weight only ever sees class k's embedding.

    Initialised like ``nn.Linear(in_dim, n_classes)`` (Kaiming-uniform with a = √5, bias U(±1/√M)).
    """

    def __init__(self, in_dim: int, n_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_classes, in_dim))
        self.bias = nn.Parameter(torch.empty(n_classes))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        bound = 1.0 / math.sqrt(self.weight.shape[1])
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, bags: torch.Tensor) -> torch.Tensor:
        """Args: bags (B, K, M). Returns: (B, K) logits."""
        return (bags * self.weight.to(bags.dtype)).sum(-1) + self.bias.to(bags.dtype)


class _SharedScalar(nn.Linear):
    """z[k] = w · B[k] + b with one (w, b) for every class (HMIL's head)."""

    def __init__(self, in_dim: int) -> None:
        super().__init__(in_dim, 1)

    def forward(self, bags: torch.Tensor) -> torch.Tensor:
        """Args: bags (B, K, M). Returns: (B, K) logits."""
        return super().forward(bags).squeeze(-1)


def build_head(kind: str, in_dim: int, n_classes: int) -> nn.Module:
    """``"shared"`` (HMIL) or ``"per_class"`` head mapping (B, K, M) class-wise bags to (B, K) logits."""
    if kind == "shared":
        return _SharedScalar(in_dim)
    if kind == "per_class":
        return ClassWiseLinear(in_dim, n_classes)
    raise ValueError(f"unknown head {kind!r}")
