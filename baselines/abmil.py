"""Attention-based deep MIL (Ilse, Tomczak & Welling, ICML 2018), gated and plain.

Paper eqs. 8–9, with the CLAM-style 512-d embedding used for WSI features (baselines.md §2.3)::

    h_i = Dropout(ReLU(W_1 x_i + b_1))                     x_i ∈ R^d, h_i ∈ R^512
    e_i = wᵀ (tanh(V h_i) ⊙ sigm(U h_i)) + b_w              gated   (plain: wᵀ tanh(V h_i) + b_w)
    a   = softmax_i(e_i) over real instances                (masked, fp32)
    z   = Σ_i a_i h_i;   logits = W_c z + b_c               (multi-class head, softmax CE)

Notes:
    Multi-class head Linear(512, C) instead of the paper's single sigmoid output, as every WSI
    re-implementation does. Dropout p applies after the embedding only (CLAM puts 0.25 on the
    attention branches too; Ilse has none there).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from benchmark.core.contract import MILModel, MILOutput, Targets, masked_softmax
from benchmark.core.hierarchy import Hierarchy
from benchmark.models import register_model

__all__ = ["ABMIL", "ABMILConfig", "ABMILPlainConfig", "GatedAttention"]


@dataclass(frozen=True)
class ABMILConfig:
    """Hyperparameters of ABMIL.

    Attributes:
        hidden_dim: embedding width M (512).
        attention_dim: attention width L (128).
        dropout: dropout after the embedding layer.
        gated: gated attention (Ilse's "Gated-Attention") instead of plain tanh attention.
    """

    hidden_dim: int = 512
    attention_dim: int = 128
    dropout: float = 0.25
    gated: bool = True


class GatedAttention(nn.Module):
    """Attention scores e (B, N, K) from instance embeddings h (B, N, M); K heads, optionally gated."""

    def __init__(self, in_dim: int, attention_dim: int, n_heads: int = 1, *, gated: bool = True) -> None:
        super().__init__()
        self.v = nn.Linear(in_dim, attention_dim)
        self.u = nn.Linear(in_dim, attention_dim) if gated else None
        self.w = nn.Linear(attention_dim, n_heads)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a = torch.tanh(self.v(h))
        if self.u is not None:
            a = a * torch.sigmoid(self.u(h))
        return self.w(a)  # (B, N, K)


class ABMIL(MILModel):
    """Gated (default) or plain attention MIL with a multi-class head."""

    permutation_invariant = True

    def __init__(self, config: ABMILConfig, *, in_dim: int, hierarchy: Hierarchy) -> None:
        super().__init__(in_dim=in_dim, n_classes=hierarchy.n_fine)
        self.config = config
        self.embed = nn.Sequential(
            nn.Linear(in_dim, config.hidden_dim), nn.ReLU(), nn.Dropout(config.dropout)
        )
        self.attention = GatedAttention(config.hidden_dim, config.attention_dim, gated=config.gated)
        self.classifier = nn.Linear(config.hidden_dim, hierarchy.n_fine)

    def _forward(self, x: torch.Tensor, mask: torch.Tensor, targets: Targets | None) -> MILOutput:
        h = self.embed(x)  # (B, N, M)
        scores = self.attention(h).transpose(1, 2)  # (B, 1, N)
        a = masked_softmax(scores, mask.unsqueeze(1))  # (B, 1, N), fp32, zero on padding
        z = torch.bmm(a.to(h.dtype), h).squeeze(1)  # (B, M)
        return MILOutput(logits=self.classifier(z), attention=a, embeddings=z)


@dataclass(frozen=True)
class ABMILPlainConfig(ABMILConfig):
    """ABMIL with Ilse's plain (non-gated) tanh attention."""

    gated: bool = False


register_model(
    "abmil",
    config=ABMILConfig,
    description="Gated attention MIL (Ilse et al. 2018), 512-d embedding, attention 128",
    reference_train={"batch_size": 1},  # Ilse et al.: one bag per step
)(ABMIL)
register_model(
    "abmil-plain",
    config=ABMILPlainConfig,
    description="Attention MIL with plain tanh attention (Ilse et al. 2018), 512-d embedding, attention 128",
    reference_train={"batch_size": 1},
)(ABMIL)
