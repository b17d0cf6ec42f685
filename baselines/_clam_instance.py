"""CLAM's instance-level clustering loss, batched over padded bags (private to `baselines.clam`).

Instance-level clustering loss (training only, §3.2), for a bag of N real instances with label y and
instance heads g_c: R^512 → R^2 (one-vs-rest, targets 1 = "class c evidence"):

    L_in      = mean ℓ(g_y(h_n), t_n) over the k_in highest (t=1) and k_in lowest (t=0) entries of A_y
    L_out,i   = mean ℓ(g_i(h_n), 0) over the k_out highest entries of A_i, for i ≠ y (subtyping only)
    L_inst    = (L_in + Σ_{i≠y} L_out,i) / (C if subtyping else 1)

(SB uses its single attention row for every branch.) k_in = min(k, ⌊N/2⌋) keeps the top and bottom
sets disjoint, k_out = min(k, N), and a bag with N < 2 contributes 0: the reference crashes on bags
smaller than k (§3.7). ℓ is the smooth top-1 SVM (`baselines._smooth_svm`) or CE.

Top-k runs on the raw attention scores, not on the softmax: the order is the same (softmax is monotone), but
raw scores stay distinct where the fp32 softmax underflows to ties.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from baselines._smooth_svm import smooth_top1_svm

__all__ = ["clam_instance_loss", "masked_topk"]


def masked_topk(scores: torch.Tensor, mask: torch.Tensor, k: int, *, largest: bool = True) -> torch.Tensor:
    """Indices of the k largest (smallest) scores per row, real instances first.

    Args:
        scores: (..., N) scores; mask: (..., N) bool, True on real instances; k ≤ N.

    Returns:
        (..., k) long indices in descending (ascending) order of score. Padded positions sort last, so the
        first min(k, n_real) entries of a row are its real top-k; callers mask the rest per row.
    """
    fill = float("-inf") if largest else float("inf")
    return (
        scores.detach().float().masked_fill(~mask, fill).topk(k, dim=-1, largest=largest, sorted=True).indices
    )


def _gather_rows(h: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """h (B, N, D), idx (B, ...) → (B, ..., D)."""
    b, d = h.shape[0], h.shape[-1]
    flat = idx.reshape(b, -1)
    return h.gather(1, flat.unsqueeze(-1).expand(-1, -1, d)).reshape(*idx.shape, d)


def _instance_criterion(name: str, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sample instance loss: logits (..., 2), targets (...) → (...), fp32."""
    if name == "svm":
        return smooth_top1_svm(logits, targets)
    flat = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none"
    )
    return flat.reshape(targets.shape)


def clam_instance_loss(
    scores: torch.Tensor,
    h: torch.Tensor,
    mask: torch.Tensor,
    labels: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    *,
    k: int,
    subtyping: bool,
    criterion: str = "svm",
) -> torch.Tensor:
    """Per-bag CLAM instance loss L_inst (module docstring), batched over padded bags.

    Args:
        scores: (B, H, N) attention scores (raw or softmaxed), H = 1 (SB: one row for every branch) or
            H = C (MB: branch c ranks by row c).
        h: (B, N, D) instance embeddings the instance heads see.
        mask: (B, N) bool, True on real instances.
        labels: (B,) long bag labels y.
        weight, bias: (C, 2, D) and (C, 2), the stacked instance heads g_c.
        k: k_sample. subtyping: add the out-of-class branches and divide by C.
        criterion: "svm" or "ce".

    Returns:
        (B,) fp32 per-bag losses; 0 for bags with fewer than 2 real instances.
    """
    n_real = mask.sum(dim=1)  # (B,)
    total = _in_class_loss(scores, h, mask, labels, weight, bias, n_real, k=k, criterion=criterion)
    if subtyping:
        out = _out_of_class_loss(scores, h, mask, labels, weight, bias, n_real, k=k, criterion=criterion)
        total = (total + out) / weight.shape[0]
    return torch.where(n_real >= 2, total, 0.0)


def _in_class_loss(
    scores: torch.Tensor,
    h: torch.Tensor,
    mask: torch.Tensor,
    labels: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    n_real: torch.Tensor,
    *,
    k: int,
    criterion: str,
) -> torch.Tensor:
    """(B,) L_in: top and bottom k_in of row y (SB: row 0), targets 1 and 0 under g_y."""
    b, n_rows, n = scores.shape
    batch = torch.arange(b, device=scores.device)
    k_in = n_real.div(2, rounding_mode="floor").clamp(max=k)  # (B,)
    kk_in = min(k, n // 2)  # static width; selections beyond k_in of a bag are masked below
    rows = labels if n_rows > 1 else torch.zeros_like(labels)
    s_in = scores[batch, rows]  # (B, N)
    idx = torch.cat([masked_topk(s_in, mask, kk_in), masked_topk(s_in, mask, kk_in, largest=False)], dim=1)
    logits = torch.einsum("bkd,bod->bko", _gather_rows(h, idx), weight[labels]) + bias[labels].unsqueeze(1)
    t_in = torch.cat([torch.ones(kk_in), torch.zeros(kk_in)]).to(device=h.device, dtype=torch.long)
    per = _instance_criterion(criterion, logits, t_in.expand(b, -1))  # (B, 2·kk_in)
    j = torch.arange(kk_in, device=h.device)
    valid = (j < k_in.unsqueeze(1)).repeat(1, 2)
    return torch.where(valid, per, 0.0).sum(dim=1) / (2 * k_in).clamp(min=1)


def _out_of_class_loss(
    scores: torch.Tensor,
    h: torch.Tensor,
    mask: torch.Tensor,
    labels: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    n_real: torch.Tensor,
    *,
    k: int,
    criterion: str,
) -> torch.Tensor:
    """(B,) Σ_{i≠y} L_out,i: top k_out of row i (SB: row 0), target 0 under g_i, for every i ≠ y."""
    b, n_rows, n = scores.shape
    n_classes = weight.shape[0]
    k_out = n_real.clamp(max=k)
    kk_out = min(k, n)
    s_out = scores.expand(b, n_classes, n) if n_rows == 1 else scores
    idx = masked_topk(s_out, mask.unsqueeze(1), kk_out)  # (B, C, kk_out)
    logits = torch.einsum("bckd,cod->bcko", _gather_rows(h, idx), weight) + bias[None, :, None, :]
    per = _instance_criterion(criterion, logits, torch.zeros(idx.shape, dtype=torch.long, device=h.device))
    j = torch.arange(kk_out, device=h.device)
    other = torch.arange(n_classes, device=h.device) != labels.unsqueeze(1)  # (B, C)
    valid = (j < k_out[:, None, None]) & other.unsqueeze(-1)
    return torch.where(valid, per, 0.0).sum(dim=(1, 2)) / k_out.clamp(min=1)
