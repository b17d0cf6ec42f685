"""TransMIL (Shao et al., NeurIPS 2021) with its own masked Nyström attention (baselines.md §4).

Per bag of N instances (§4.1–4.3)::

    h      = ReLU(W_1 x + b_1)                                  N×d → N×512
    square : H = ⌈√N⌉, append tokens 0..H²−N−1 again            N' = H² tokens (repeats, not zeros)
    seq    = [cls; h']                                           (N'+1)×512
    seq   += NystromAttention(LayerNorm(seq))                    TransLayer 1 (no feed-forward)
    h'     = h' + DW7(h') + DW5(h') + DW3(h') on the H×H grid     PPEG, row-major stored order; cls passes
    seq   += NystromAttention(LayerNorm(seq))                    TransLayer 2
    logits = W_2 LayerNorm(seq)[cls] + b_2

Batching (§4.6): squaring, the PPEG grid, the Nyström padding/landmarks/pinv and the residual
convolution all use each bag's own N — never the batch's N_max — so a bag gives the same logits alone
or padded inside a batch. Instead of looping over bags, every step builds a per-bag layout inside one
padded tensor that reproduces the single-bag computation exactly:

* squaring and the cls token: one row gather per bag (each bag repeats its own first tokens);
* PPEG: bag b's H_b×H_b grid is written into the top-left corner of a zero H_max×H_max canvas; a
  depthwise "same" convolution then sees zeros around the bag's grid, exactly its own zero padding;
* attention: `baselines._nystrom.MaskedNystromAttention` (per-bag segments, masks and pinv init).

Not permutation-invariant: PPEG uses the stored instance order. The attention core runs in fp32.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import nn

from baselines._nystrom import MaskedNystromAttention, gather_rows
from benchmark.core.contract import MILModel, MILOutput, Targets
from benchmark.core.errors import ConfigError
from benchmark.core.hierarchy import Hierarchy
from benchmark.models import register_model

__all__ = ["PPEG", "TransLayer", "TransMIL", "TransMILConfig", "grid_sides", "square_index"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TransMILConfig:
    """Hyperparameters of TransMIL (reference values, §4.4).

    Attributes:
        dim: width after the first layer (512).
        heads: attention heads (8, head width dim // heads = 64).
        landmarks: Nyström landmarks m (256).
        pinv_iterations: iterations of the pseudo-inverse (6; more can diverge when m < n).
        residual_kernel: depthwise residual convolution kernel along the sequence (33; 0 = off; odd).
        dropout: dropout after each attention's output projection (0.1; the reference has no other).
        nystrom_v009_slicing: reproduce nystrom-attention 0.0.9's misaligned output rows (ablation, §4.5).
    """

    dim: int = 512
    heads: int = 8
    landmarks: int = 256
    pinv_iterations: int = 6
    residual_kernel: int = 33
    dropout: float = 0.1
    nystrom_v009_slicing: bool = False

    def __post_init__(self) -> None:
        if self.dim < 1 or self.heads < 1 or self.dim % self.heads:
            raise ConfigError(
                f"model.dim={self.dim} must be a positive multiple of model.heads={self.heads}; "
                "the reference uses 512 and 8."
            )
        if self.landmarks < 1:
            raise ConfigError(f"model.landmarks={self.landmarks} must be ≥ 1; the reference uses 256.")
        if self.pinv_iterations < 0:
            raise ConfigError(
                f"model.pinv_iterations={self.pinv_iterations} must be ≥ 0; the reference uses 6."
            )
        if self.residual_kernel < 0 or (self.residual_kernel and self.residual_kernel % 2 == 0):
            raise ConfigError(
                f"model.residual_kernel={self.residual_kernel} must be 0 (off) or odd; the reference uses 33."
            )
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"model.dropout={self.dropout} must be in [0, 1); the reference uses 0.1.")


def grid_sides(n: torch.Tensor) -> torch.Tensor:
    """H_b = ⌈√N_b⌉ per bag (exact integer arithmetic; 0 for an empty bag). n: (B,) long → (B,) long."""
    return torch.tensor(
        [math.isqrt(c - 1) + 1 if c > 0 else 0 for c in n.tolist()], dtype=torch.long, device=n.device
    )


def square_index(n: torch.Tensor, sides: torch.Tensor, width: int) -> torch.Tensor:
    """Row index (B, width) of each bag's squared sequence: 0..N−1, then 0..H²−N−1 again; -1 beyond H².

    Args:
        n: (B,) instances per bag; sides: (B,) `grid_sides` of n; width: at least max H².
    """
    i = torch.arange(width, device=n.device).unsqueeze(0)
    src = torch.where(i < n[:, None], i, i - n[:, None])
    return torch.where(i < (sides * sides)[:, None], src, -1)


class PPEG(nn.Module):
    """Pyramid position encoding: x + DW7(x) + DW5(x) + DW3(x) on each bag's own H×H grid (§4.3)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim) for k in (7, 5, 3))

    def forward(self, tokens: torch.Tensor, sides: torch.Tensor) -> torch.Tensor:
        """Apply PPEG per bag.

        Args:
            tokens: (B, L, dim) feature tokens (no cls); bag b's grid is ``tokens[b, :H_b²]`` row-major.
            sides: (B,) long grid sides H_b (0 for an empty bag).

        Returns:
            (B, L, dim), zero beyond H_b².
        """
        side = max(int(sides.max()), 1)
        dev = tokens.device
        r = torch.arange(side, device=dev)
        rr, cc = r.view(1, -1, 1), r.view(1, 1, -1)
        h = sides.view(-1, 1, 1)
        inside = (rr < h) & (cc < h)  # (B, S, S)
        canvas_src = torch.where(inside, rr * h + cc, -1).flatten(1)  # token at canvas cell (r, c)
        grid = gather_rows(tokens, canvas_src).transpose(1, 2).unflatten(-1, (side, side))  # (B, dim, S, S)
        # conv7 + conv5 + conv3 = one 7×7 conv with the zero-padded kernels summed (same result, one pass).
        weight = sum(nn.functional.pad(c.weight, [(7 - c.kernel_size[0]) // 2] * 4) for c in self.convs)
        bias = sum(c.bias for c in self.convs)
        grid = grid + nn.functional.conv2d(grid, weight, bias, padding=3, groups=grid.shape[1])
        i = torch.arange(tokens.shape[1], device=dev).unsqueeze(0)
        hs = sides.clamp(min=1).unsqueeze(1)
        back = torch.where(
            i < (sides * sides)[:, None], (i // hs) * side + i % hs, -1
        )  # canvas cell of token i
        return gather_rows(grid.flatten(2).transpose(1, 2), back)


class TransLayer(nn.Module):
    """Pre-norm Nyström attention with a residual (no feed-forward sub-layer): x + Attn(LN(x))."""

    def __init__(self, config: TransMILConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(config.dim)
        self.attn = MaskedNystromAttention(
            config.dim,
            heads=config.heads,
            landmarks=config.landmarks,
            pinv_iterations=config.pinv_iterations,
            residual_kernel=config.residual_kernel,
            dropout=config.dropout,
            v009_slicing=config.nystrom_v009_slicing,
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x: (B, L, dim) with sequence b in rows [0, lengths[b]); returns the same shape."""
        return x + self.attn(self.norm(x), lengths)


class TransMIL(MILModel):
    """TransMIL with per-bag squaring, PPEG and Nyström attention under a padding mask."""

    permutation_invariant = False

    def __init__(self, config: TransMILConfig, *, in_dim: int, hierarchy: Hierarchy) -> None:
        super().__init__(in_dim=in_dim, n_classes=hierarchy.n_fine)
        self.config = config
        self.fc1 = nn.Sequential(nn.Linear(in_dim, config.dim), nn.ReLU())
        self.cls_token = nn.Parameter(torch.randn(1, 1, config.dim))
        self.layer1 = TransLayer(config)
        self.ppeg = PPEG(config.dim)
        self.layer2 = TransLayer(config)
        self.norm = nn.LayerNorm(config.dim)
        self.fc2 = nn.Linear(config.dim, hierarchy.n_fine)
        logger.info(
            "TransMIL: Nyström output rows %s",
            "FIRST n (nystrom-attention 0.0.9 misalignment, ablation)"
            if config.nystrom_v009_slicing
            else "last n (corrected, nystrom-attention >= 0.0.10)",
        )

    def _forward(self, x: torch.Tensor, mask: torch.Tensor, targets: Targets | None) -> MILOutput:
        bsz = x.shape[0]
        h = self.fc1(x)  # (B, N, dim)
        # Real instances first, in stored order (a no-op for left-aligned masks).
        order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
        n = mask.sum(1)  # (B,)
        sides = grid_sides(n)
        width = max(int((sides * sides).max()), 1)
        idx = square_index(n, sides, width)  # (B, N'_max) position among the real instances
        squared = gather_rows(
            h, torch.where(idx >= 0, torch.gather(order, 1, idx.clamp(min=0)), -1)
        )  # (B, N', dim)
        seq = torch.cat([self.cls_token.expand(bsz, 1, -1).to(squared.dtype), squared], dim=1)
        lengths = sides * sides + 1
        seq = self.layer1(seq, lengths)
        seq = torch.cat([seq[:, :1], self.ppeg(seq[:, 1:], sides)], dim=1)
        seq = self.layer2(seq, lengths)
        z = self.norm(seq[:, 0])  # (B, dim)
        return MILOutput(logits=self.fc2(z), embeddings=z)


register_model(
    "transmil",
    config=TransMILConfig,
    description="TransMIL (Shao et al. 2021): 2 Nyström layers + PPEG, masked per bag, corrected alignment",
    # Reference optimiser lr / decoupled weight decay (§4.7); its Lookahead-RAdam, batch 1 with
    # accumulation 2 and bias/LayerNorm exclusion from decay are not options of the shared harness;
    # train.preset=reference gives its one slide per step.
    train_defaults={"lr": 2e-4, "weight_decay": 1e-5},
    reference_train={"batch_size": 1},
)(TransMIL)
