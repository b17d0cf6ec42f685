"""Class-wise gated attention pooling: one gated-attention head per class (hmil-method.md §4.2–4.3).

For instance features h_n and K classes::

    s_n = W_a [ tanh(V h_n + b_V) ⊙ σ(U h_n + b_U) ] + b_a ∈ R^K       (gated attention, Ilse et al. 2018)
    A[k, n] = softmax_n(s_n[k])           over the real instances only, per class (masked, fp32)
    Bag[k] = Σ_n A[k, n] h_n                                             (the bag as seen by class k)

Notes:
    The per-class bias b_a shifts every score of class k by the same amount, so it cancels in the
    softmax over instances and always receives a zero gradient. It is kept because the released
    model has it and the parameter counts of §4.4 include it.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.core.contract import masked_softmax

__all__ = ["ClassWiseGatedAttention"]


class ClassWiseGatedAttention(nn.Module):
    """K gated-attention heads over a bag and the K class-wise bag embeddings.

    Args:
        in_dim: instance feature width M.
        attention_dim: hidden width of the V and U branches.
        n_classes: number of heads K.
        dropout: dropout after tanh and after the sigmoid (CLAM's placement); HMIL uses 0.
    """

    def __init__(self, in_dim: int, attention_dim: int, n_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.v = nn.Sequential(nn.Linear(in_dim, attention_dim), nn.Tanh(), nn.Dropout(dropout))
        self.u = nn.Sequential(nn.Linear(in_dim, attention_dim), nn.Sigmoid(), nn.Dropout(dropout))
        self.w = nn.Linear(attention_dim, n_classes)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool a padded batch of bags.

        Args:
            h: (B, N, M) instance features.
            mask: (B, N) bool, True on real instances.

        Returns:
            attention: (B, K, N) fp32; each row sums to 1 over the real instances, exactly 0 on padding
                (all zeros for a bag without real instances).
            bags: (B, K, M) class-wise bag embeddings.
        """
        scores = self.w(self.v(h) * self.u(h)).transpose(1, 2)  # (B, K, N)
        attention = masked_softmax(scores, mask.unsqueeze(1))  # (B, K, N), fp32
        return attention, torch.bmm(attention.to(h.dtype), h)  # (B, K, M)
