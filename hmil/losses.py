"""HMIL's auxiliary losses: HAM, HBA and supervised contrastive (hmil-method.md §5–7).

All functions take a padded batch and return a scalar fp32 tensor. A bag without any real instance
(``valid`` False; loaders reject such bags, this only keeps padded batch rows harmless) is left out of
every mean, so it can neither change the value for the other bags nor produce NaN. When no bag is valid
the loss is 0.

M is the (K_f, K_c) 0/1 roll-up matrix, M[j, k] = 1 iff fine class j has parent k.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "HBA_FORMS",
    "SCL_POSITIVES",
    "TAU_MODES",
    "ham_loss",
    "hba_loss",
    "scl_temperature",
    "supcon_loss",
]

HBA_FORMS = ("nll", "ce_on_probs")
SCL_POSITIVES = ("all_rows", "gt_row")
TAU_MODES = ("fixed", "cosine")


def _mean_over(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of values (B,) over the valid entries (B,) bool; 0 when none is valid."""
    values = torch.where(valid, values, torch.zeros_like(values))
    return values.sum() / valid.sum().clamp_min(1)


def ham_loss(
    coarse_attention: torch.Tensor, fine_attention: torch.Tensor, roll_up: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Hierarchical attention matching (instance level, §5).

    Per bag: L = (1/N) Σ_n [1 − cos(A^c[:, n], (Mᵀ A^f)[:, n])], the cosine running over the class axis
    (one K_c-vector per instance, eps 1e-8 as PyTorch's default) and n over the real instances only;
    then the mean over bags. Attention is non-negative, so every term lies in [0, 1].

    Args:
        coarse_attention: (B, K_c, N), zero on padding.
        fine_attention: (B, K_f, N), zero on padding.
        roll_up: (K_f, K_c) matrix M.
        mask: (B, N) bool, True on real instances.
    """
    rolled = torch.einsum("bjn,jk->bkn", fine_attention.float(), roll_up.float())  # (B, K_c, N) = Mᵀ A^f
    cosine = F.cosine_similarity(coarse_attention.float(), rolled, dim=1, eps=1e-8)  # (B, N)
    # Padded instances have two zero vectors (cosine 0, i.e. a term of 1): they must not count.
    terms = torch.where(mask, 1.0 - cosine, torch.zeros_like(cosine))
    n_real = mask.sum(dim=1)
    return _mean_over(terms.sum(dim=1) / n_real.clamp_min(1), n_real > 0)


def hba_loss(
    fine_logits: torch.Tensor,
    coarse_labels: torch.Tensor,
    roll_up: torch.Tensor,
    *,
    form: str = "nll",
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Hierarchical bag alignment (bag level, §6) on q = Mᵀ softmax(z^f), the fine-implied coarse distribution.

    * ``nll`` (paper preset): L = −log max(q[y_c], 1e-8).
    * ``ce_on_probs`` (released code): L = CE(q used as logits, y_c) = −log softmax(q)[y_c]; a softmax of
      probabilities, bounded below by −log(e / (e + K_c − 1)).

    Args:
        fine_logits: (B, K_f).
        coarse_labels: (B,) long.
        roll_up: (K_f, K_c) matrix M.
        form: "nll" or "ce_on_probs".
        valid: (B,) bool, bags that enter the mean (default all).
    """
    if form not in HBA_FORMS:
        raise ValueError(f"hba form must be one of {HBA_FORMS}, got {form!r}")
    q = torch.softmax(fine_logits.float(), dim=-1) @ roll_up.float()  # (B, K_c), rows sum to 1
    if form == "nll":
        per_bag = -torch.log(q.gather(1, coarse_labels.view(-1, 1)).squeeze(1).clamp_min(1e-8))
    else:
        per_bag = F.cross_entropy(q, coarse_labels, reduction="none")
    if valid is None:
        valid = torch.ones_like(per_bag, dtype=torch.bool)
    return _mean_over(per_bag, valid)


def scl_temperature(progress: float, *, mode: str, tau: float, tau_max: float = 1.0) -> float:
    """SupCon temperature at training progress e/E.

    ``fixed``: τ. ``cosine`` (released code): τ + (τ_max − τ)(1 + cos(2π e/E)) / 2, i.e. τ_max at the
    start, τ at E/2 and back towards τ_max at the end (1.0 → 0.1 → 1.0 with the code's values).
    """
    if mode == "fixed":
        return tau
    if mode == "cosine":
        return tau + (tau_max - tau) * (1.0 + math.cos(2.0 * math.pi * progress)) / 2.0
    raise ValueError(f"temperature mode must be one of {TAU_MODES}, got {mode!r}")


def supcon_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    *,
    tau: float,
    tau_base: float | None = None,
    positives: str = "all_rows",
    divide_by_batch: bool = False,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Supervised contrastive loss over the class-wise bag embeddings of a batch (§7; Khosla et al. 2020).

    Rows: the B·K_f embeddings e_(b,j) (L2-normalised), row (b, j) labelled with the bag's fine label.
    With s_ia = e_i·e_a, m_i = max_a s_ia/τ (all a including i, detached), u_ia = s_ia/τ − m_i::

        ℓ_i = −(τ/τ_base) · 1/(|P(i)| + 1e-6) · Σ_{p∈P(i)} [ u_ip − log(Σ_{a≠i} exp(u_ia) + 1e-6) ]
        L   = mean of ℓ_i over the anchors            (÷ B as well when divide_by_batch)

    * ``all_rows`` (default, released code): every row is an anchor; P(i) = all other rows of bags with
      the same fine label, *including the other K_f − 1 rows of the anchor's own bag*.
    * ``gt_row``: only the ground-truth rows (b, y_b) are anchors; P(i) = the ground-truth rows of the
      other bags with the same label. Every other row remains in the denominator as a negative.

    An anchor without positives (``gt_row`` with a label seen once in the batch, e.g. a batch of one bag)
    contributes ℓ_i = 0 but still counts in the mean, as the 1e-6 in the coded formula implies.

    Args:
        embeddings: (B, K_f, D) L2-normalised class-wise bag embeddings.
        labels: (B,) long fine labels.
        tau: temperature τ (> 0).
        tau_base: scale base; None means τ_base = τ (factor 1).
        positives: "all_rows" or "gt_row".
        divide_by_batch: divide by the number of (valid) bags B, as the released code does.
        valid: (B,) bool, bags that take part (default all).
    """
    if positives not in SCL_POSITIVES:
        raise ValueError(f"supcon positives must be one of {SCL_POSITIVES}, got {positives!r}")
    n_bags, n_classes, _ = embeddings.shape
    if valid is None:
        valid = torch.ones(n_bags, dtype=torch.bool, device=embeddings.device)
    z = embeddings.float().reshape(n_bags * n_classes, -1)  # (R, D), R = B·K_f, bag-major
    row_bag = torch.arange(n_bags, device=z.device).repeat_interleave(n_classes)  # (R,)
    row_class = torch.arange(n_classes, device=z.device).repeat(n_bags)  # (R,)
    row_label = labels[row_bag]
    row_valid = valid[row_bag]

    log_prob, contrast = _supcon_log_prob(z, row_valid, tau)
    positive, anchor = _supcon_pairs(contrast, row_label, row_class, row_valid, positives)
    mean_log_prob = torch.where(positive, log_prob, torch.zeros_like(log_prob)).sum(dim=1) / (
        positive.sum(dim=1) + 1e-6
    )
    scale = 1.0 if tau_base is None else tau / tau_base
    loss = _mean_over(-scale * mean_log_prob, anchor)
    if divide_by_batch:
        loss = loss / valid.sum().clamp_min(1)
    return loss


def _supcon_log_prob(
    z: torch.Tensor, row_valid: torch.Tensor, tau: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """log p_ia = u_ia − log(Σ_{a'≠i} exp(u_ia') + 1e-6) for rows z (R, D) (see `supcon_loss`).

    Returns:
        (R, R) fp32 log-probabilities and the (R, R) bool contrast mask (valid columns a ≠ i).
    """
    logits = z @ z.T / tau  # (R, R)
    # Stabiliser m_i over the valid columns; it cancels except inside the two 1e-6 terms (kept as coded).
    m = logits.masked_fill(~row_valid.unsqueeze(0), float("-inf")).amax(dim=1, keepdim=True).detach()
    u = logits - torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    contrast = row_valid.unsqueeze(0) & ~torch.eye(len(z), dtype=torch.bool, device=z.device)  # a ≠ i
    # -inf before exp (not a 0 after it) keeps masked columns out of the gradient without inf·0 = NaN.
    log_denominator = torch.log(torch.exp(u.masked_fill(~contrast, float("-inf"))).sum(dim=1) + 1e-6)  # (R,)
    return u - log_denominator.unsqueeze(1), contrast


def _supcon_pairs(
    contrast: torch.Tensor,
    row_label: torch.Tensor,
    row_class: torch.Tensor,
    row_valid: torch.Tensor,
    positives: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (R, R) bool positive pairs P(i) and the (R,) bool anchors for ``positives`` (see `supcon_loss`)."""
    positive = contrast & (row_label.unsqueeze(0) == row_label.unsqueeze(1))
    anchor = row_valid
    if positives == "gt_row":
        is_gt = row_class == row_label
        positive = positive & is_gt.unsqueeze(0)
        anchor = anchor & is_gt
    return positive, anchor
