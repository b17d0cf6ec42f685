"""Masked Nyström self-attention as TransMIL uses it (baselines.md §4.4–4.6), plus an exact reference.

Written from the equations of Xiong et al. (2021) as configured by ``nystrom-attention`` ≥ 0.0.10
(no code copied). For one sequence of n rows, per head::

    p = (-n) mod m                     left zero-pad to L = n + p = m·l rows, l = ⌈n/m⌉
    q, k, v = x W_qkv (no bias);  q ← q / √d_h
    q̃_j, k̃_j = means of q, k over rows [j·l, (j+1)·l)            j = 0..m-1
    F1 = softmax(q k̃ᵀ) (L×m),  F2 = softmax(q̃ k̃ᵀ) (m×m),  F3 = softmax(q̃ kᵀ) (m×L)
    Z ≈ F2⁺ by the iterative Moore–Penrose scheme (`iterative_pinv`)
    out = (F1 Z)(F3 v) + DWConv_{k×1}(v);  merge heads;  W_o out + b_o;  dropout
    keep the LAST n rows (0.0.9 kept the first n: the misalignment bug, §4.5, flag ``v009_slicing``)

Batching: every bag keeps its own n, p, l and its own pinv initialisation. Bag b's rows sit left-aligned
at [0, n_b) of the (B, L_in, dim) input and stay there: rows ≥ n_b (batch padding) are zeroed in q, k, v,
masked as keys and never read back, so the residual convolution sees exactly the zeros it sees alone.
The reference's p_b internal zero rows are part of the algorithm and stay unmasked, but need not be
materialised: as keys they have logit 0 and value 0 (one extra F3 column of logit log p_b), their
landmark segments are handled by each row's own segment index ⌊(i + p_b) / l_b⌋, and their outputs are
discarded. (With ``v009_slicing`` their outputs are kept, so that path does build the padded rows.)

Merged landmarks: the z_b = ⌊p_b / l_b⌋ segments made only of internal padding give z_b identical zero
landmarks. They are merged into one slot of multiplicity z_b (see `_merged_factors`), which is exact in
real arithmetic and shrinks the m×m pseudo-inverse to r×r with r ≤ n_b + 1 for short bags (a 50-instance
bag: r = 66 instead of 256, ~57× less work in the pinv).

The pinv initialisation Z₀ = F2ᵀ / (max_i Σ_j|F2_ij| · max_j Σ_i|F2_ij|) takes its maxima per bag over
all heads: with B = 1 this is exactly the reference (whose maxima span the whole tensor), and a bag's
result no longer depends on its batch-mates (the reference's batch-wide max does, §4.4).

Hence a bag inside a batch gives the same output as the bag alone, up to float rounding.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.core.contract import masked_softmax

__all__ = ["MaskedNystromAttention", "gather_rows", "iterative_pinv"]


def gather_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Per-bag row gather with an "empty" index.

    Args:
        x: (B, L, C) rows.
        index: (B, L2) long; ``index[b, t]`` is the row of ``x[b]`` to place at t, or -1 for a zero row.

    Returns:
        (B, L2, C).

    The backward pass is an ``index_add``: duplicated indices (squaring repeats tokens, at most twice)
    add at most two terms onto zero, which is exact in any order, so it stays deterministic on GPU.
    """
    b, length, c = x.shape
    flat = torch.cat([x.reshape(b * length, c), x.new_zeros(1, c)])
    offsets = torch.arange(b, device=x.device).unsqueeze(1) * length
    flat_index = torch.where(index >= 0, index + offsets, b * length)
    return flat.index_select(0, flat_index.reshape(-1)).reshape(b, index.shape[1], c)


def iterative_pinv(x: torch.Tensor, iterations: int, scale: torch.Tensor | None = None) -> torch.Tensor:
    """Iterative Moore–Penrose pseudo-inverse of (B, H, r, r) matrices, initialised per bag.

    Z₀ = xᵀ / scale_b, then ``iterations`` times Z ← ¼ Z (13I − xZ (15I − xZ (7I − xZ))).

    Args:
        x: (B, H, r, r).
        iterations: number of iterations.
        scale: (B,) initial scale; default max row-abs-sum · max column-abs-sum of x, both maxima over
            the heads and rows of one bag b (the reference takes them over the whole tensor).
    """
    if scale is None:
        a = x.abs()
        scale = a.sum(-1).flatten(1).amax(1) * a.sum(-2).flatten(1).amax(1)  # (B,)
    shape = x.shape
    x = x.flatten(0, 1)  # (B·H, r, r): baddbmm fuses each "cI − A B" into one call
    z = x.transpose(-1, -2) / scale.repeat_interleave(shape[1])[:, None, None]
    eye = torch.eye(shape[-1], dtype=x.dtype, device=x.device)
    for _ in range(iterations):
        xz = torch.bmm(x, z)
        inner = torch.baddbmm(15 * eye, xz, 7 * eye - xz, alpha=-1)
        z = torch.bmm(z, torch.baddbmm(13 * eye, xz, inner, alpha=-1)) * 0.25
    return z.reshape(shape)


def _merged_factors(
    q: torch.Tensor,
    k: torch.Tensor,
    q_land: torch.Tensor,
    k_land: torch.Tensor,
    weight: torch.Tensor,
    keys: torch.Tensor,
    virtual: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The three Nyström kernels with merged landmarks, and the per-bag Z₀ scale of the full m×m F2.

    Slot s stands for w_s = ``weight[b, s]`` identical landmarks (0 = unused slot). With U the m×r matrix
    whose column s is the normalised indicator of slot s's copies, the reference's matrices are
    F1 = F̃1 Uᵀ, F2 = U F̃2 Uᵀ, F3 = U F̃3 (copies give identical rows/columns), and the pinv iteration
    keeps Z = U Z̃ Uᵀ, so (F1 Z)(F3 v) = F̃1 Z̃ F̃3 v exactly in real arithmetic. With P the softmax over
    slots with log-weights (P_t = w_t · one copy's entry): F̃1 = P1 W^-½, F̃2 = W^½ P2 W^-½ and
    F̃3 = W^½ S3, where S3 = softmax(q̃ kᵀ) over the keys, W = diag(w).

    Args:
        q, k: (B, H, L, d_h) (q pre-scaled); q_land, k_land: (B, H, r, d_h) slot landmarks (q̃ pre-scaled).
        weight: (B, r) copies per slot (slot 1 is always used). keys: (B, L) bool, layout rows that exist
            as keys (not batch padding); every bag has at least one.
        virtual: (B,) long, zero keys (logit 0, value 0) outside the layout that share S3's normalisation.

    Returns:
        P1 (B, H, L, r), F̃2 (B, H, r, r), S3 (B, H, r, L), √w (B, r), and the Z₀ scale (B,).
    """
    active = weight > 0
    root = weight.sqrt()
    inv_root = torch.where(active, 1 / root.clamp(min=1), 0.0)
    # Plain softmaxes with additive -inf (unused slots, batch padding): no masked copies of the big
    # (L × r) and (r × L) tensors; every row keeps at least one finite entry.
    log_w = torch.where(active, weight.clamp(min=1).log(), float("-inf"))[:, None, None, :]
    p1 = torch.softmax(q @ k_land.transpose(-1, -2) + log_w, dim=-1)
    p2 = torch.softmax(q_land @ k_land.transpose(-1, -2) + log_w, dim=-1)  # (B, H, r, r)
    f2 = root[:, None, :, None] * p2 * inv_root[:, None, None, :]
    s3 = (q_land @ k.transpose(-1, -2)).masked_fill(~keys[:, None, None, :], float("-inf"))
    log_virtual = torch.where(virtual > 0, virtual.clamp(min=1).log(), float("-inf")).to(s3.dtype)
    s3 = torch.exp(
        s3 - torch.logaddexp(torch.logsumexp(s3, -1, keepdim=True), log_virtual[:, None, None, None])
    )
    # Row sums of the full F2 are Σ_t P_st (≈ 1); column sums are Σ_s w_s P_st / w_t.
    row_max = (p2.sum(-1) * active[:, None, :]).flatten(1).amax(1)
    inv_w = torch.where(active, 1 / weight.clamp(min=1), 0.0)
    col_max = ((weight[:, None, :, None] * p2).sum(-2) * inv_w[:, None, :]).flatten(1).amax(1)
    return p1, f2, s3, root, row_max * col_max


class MaskedNystromAttention(nn.Module):
    """Nyström self-attention over a batch of variable-length sequences.

    Args:
        dim: model width (512).
        heads: attention heads (8); the head width is ``dim // heads``.
        landmarks: m, the number of landmarks (256).
        pinv_iterations: iterations of `iterative_pinv` (6).
        residual_kernel: kernel of the depthwise residual convolution along the sequence (33); 0 = off.
        dropout: dropout after the output projection (the only dropout, as in the reference).
        v009_slicing: keep the FIRST n rows after left-padding, reproducing nystrom-attention 0.0.9's
            misalignment (ablation only; off = the corrected ≥ 0.0.10 behaviour).
    """

    def __init__(
        self,
        dim: int,
        *,
        heads: int = 8,
        landmarks: int = 256,
        pinv_iterations: int = 6,
        residual_kernel: int = 33,
        dropout: float = 0.0,
        v009_slicing: bool = False,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} is not divisible by heads={heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.landmarks, self.pinv_iterations, self.v009_slicing = landmarks, pinv_iterations, v009_slicing
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)  # bias-free: the zero pad rows give q = k = v = 0
        self.to_out = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(dropout))
        self.res_conv = (
            nn.Conv2d(
                heads,
                heads,
                (residual_kernel, 1),
                padding=(residual_kernel // 2, 0),
                groups=heads,
                bias=False,
            )
            if residual_kernel
            else None
        )

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        """(B, L, H·d_h) → (B, H, L, d_h)."""
        return t.unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)

    def _finish(self, out: torch.Tensor, v: torch.Tensor, n: torch.Tensor, length: int) -> torch.Tensor:
        """Add the residual conv, keep layout rows [0, n_b) (padded/cut to ``length``), project out (fp32)."""
        if self.res_conv is not None:
            out = out + self.res_conv(v)
        out = out.transpose(1, 2).flatten(2)[:, :length]  # (B, ≤length, dim)
        out = nn.functional.pad(out, (0, 0, 0, length - out.shape[1]))
        keep = torch.arange(length, device=out.device).unsqueeze(0) < n[:, None]
        return self.to_out(out) * keep.unsqueeze(-1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Nyström attention per sequence.

        Args:
            x: (B, L_in, dim); sequence b is ``x[b, :lengths[b]]`` in order, later rows are ignored.
            lengths: (B,) long, n_b ≥ 1.

        Returns:
            (B, L_in, dim) fp32: each sequence's output rows aligned with its input rows; 0 beyond n_b.
        """
        m, dev = self.landmarks, x.device
        n = lengths.to(dev)
        seg = (n + m - 1) // m  # l_b, rows per landmark segment
        padded = m * seg  # L_b = n_b + p_b
        pad = padded - n  # p_b internal zero rows, first in the reference's padded sequence
        zeros = pad // seg  # z_b landmarks whose segment is all internal padding (merged into slot 0)
        qkv = self.to_qkv(x)
        if self.v009_slicing:
            # 0.0.9 returns padded rows [0, n_b): the internal zero rows must exist as query rows.
            t = torch.arange(int(padded.max()), device=dev).unsqueeze(0)
            qkv = gather_rows(
                qkv, torch.where((t >= pad[:, None]) & (t < padded[:, None]), t - pad[:, None], -1)
            )
            offset, virtual, rows = torch.zeros_like(pad), torch.zeros_like(pad), padded
        else:
            # Layout = the input rows; the p_b zero rows only matter as keys (logit 0, value 0): one virtual
            # key with multiplicity p_b in F3, and zeros around the sequence for the residual convolution.
            offset, virtual, rows = pad, pad, n
        t = torch.arange(qkv.shape[1], device=dev).unsqueeze(0)
        keys = t < rows[:, None]  # (B, L) layout rows that exist (not batch padding)
        # The attention core runs in fp32 even under autocast: the iterative pinv is a NaN source in 16 bit.
        with torch.autocast(dev.type, enabled=False):
            qkv = qkv.float() * keys.unsqueeze(-1)  # batch padding → v = 0, the conv's zero padding
            # Slot s ≥ 1 is landmark j = z_b + s - 1; slot 0 stands for the z_b identical zero landmarks.
            s_idx = torch.arange(int((m - zeros).max()) + 1, device=dev).unsqueeze(0)
            weight = torch.where(s_idx == 0, zeros[:, None], (s_idx <= (m - zeros)[:, None]).long()).float()
            j = (t + offset[:, None]) // seg[:, None]  # landmark segment of each layout row
            owner = torch.where(keys & (j >= zeros[:, None]), j - zeros[:, None] + 1, -1)
            avg = (owner.unsqueeze(1) == s_idx.unsqueeze(-1)).float() / seg[:, None, None]  # (B, slots, L)
            scale = self.head_dim**-0.5
            q, k, v = (self._heads(c) for c in qkv.chunk(3, dim=-1))  # (B, H, L, d_h)
            qk_land = avg @ qkv[..., : 2 * self.heads * self.head_dim]  # (B, slots, 2·dim) segment means
            q_land, k_land = (self._heads(c) for c in qk_land.chunk(2, dim=-1))  # (B, H, slots, d_h)
            p1, f2, s3, root, z_scale = _merged_factors(
                q * scale, k, q_land * scale, k_land, weight, keys, virtual
            )
            z = iterative_pinv(f2, self.pinv_iterations, z_scale)  # (B, H, r, r)
            # (F1 Z)(F3 v) = P1 (W^-½ Z W^½)(S3 v), multiplied right to left: no (L × r) product.
            inv_root = torch.where(root > 0, 1 / root.clamp(min=1), 0.0)
            out = p1 @ (
                inv_root[:, None, :, None] * z @ (root[:, None, :, None] * (s3 @ v))
            )  # (B, H, L, d_h)
            return self._finish(out, v, n, x.shape[1])

    def forward_exact(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Exact softmax attention with the same weights (test reference; O(n²) memory).

        Same projections, scaling, residual convolution and output projection as `forward`, but
        out = softmax(q kᵀ) v over each sequence's n_b rows, with no landmarks and no internal padding.

        Args:
            x: (B, L_in, dim); lengths: (B,) long. Returns (B, L_in, dim), 0 beyond n_b.
        """
        dev, n = x.device, lengths.to(x.device)
        real = torch.arange(x.shape[1], device=dev).unsqueeze(0) < n[:, None]  # (B, L_in)
        with torch.autocast(dev.type, enabled=False):
            q, k, v = (self._heads(c) for c in (self.to_qkv(x).float() * real.unsqueeze(-1)).chunk(3, dim=-1))
            attn = masked_softmax(q @ k.transpose(-1, -2) * self.head_dim**-0.5, real[:, None, None, :])
            return self._finish(attn @ v, v, n, x.shape[1])
