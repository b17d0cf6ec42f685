"""Online re-embedding: trainable projections of the frozen offline features (hmil-method.md §4.1).

::

    h^c_n = W2 · ReLU(W1 x_n + b1) + b2        x_n ∈ R^d → R^256 → R^1024   (coarse feature)
    h^f_n = W3 h^c_n + b3                                   R^1024 → R^256   (fine feature)

The fine feature is derived from the coarse one, as in the released code (the figure draws h_c straight
out of the frozen extractor; the code, which we follow, passes both through this MLP). No residual, no
dropout. For d ≠ 1024 only W1's input width changes; the coarse width stays 1024.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["OnlineReEmbedding"]


class OnlineReEmbedding(nn.Module):
    """Coarse and fine instance features from frozen features.

    Args:
        in_dim: offline feature width d.
        hidden_dim: width of the first layer (256).
        coarse_dim: coarse feature width (1024).
        fine_dim: fine feature width (256).
    """

    def __init__(
        self, in_dim: int, hidden_dim: int = 256, coarse_dim: int = 1024, fine_dim: int = 256
    ) -> None:
        super().__init__()
        self.coarse = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, coarse_dim)
        )
        self.fine = nn.Linear(coarse_dim, fine_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: x (B, N, d). Returns: h_c (B, N, coarse_dim), h_f (B, N, fine_dim)."""
        h_c = self.coarse(x)
        return h_c, self.fine(h_c)
