"""HMIL: hierarchical multi-instance learning (Jin et al., IEEE TMI 44(4):1796–1808, 2025; arXiv:2411.07660).

Per bag X (N × d), written from the equations in hmil-method.md §4 (the released code is GPLv3 and is
not copied)::

    H^c = W2 ReLU(W1 X)           (N × 1024)        H^f = W3 H^c                      (N × 256)
    A^c = softmax_n(gated_c(H^c)) (K_c × N)         A^f = softmax_n(gated_f(H^f))    (K_f × N)
    B^c = A^c H^c                 (K_c × 1024)      B^f = A^f H^f                     (K_f × 256)
    z^c[k] = w_c·B^c[k] + b_c                       z^f[j] = w_f·B^f[j] + b_f        (shared scalar heads;
                                                    head="per_class": w_k, b_k per class, ``hmil-pc``)
    e_j = B^f[j] / max(‖B^f[j]‖, 1e-12)                                               (SupCon embeddings)

Outputs (`MILOutput`):
    logits: (B, K_f) fine logits z^f.   coarse_logits: (B, K_c) z^c, or None without the coarse branch.
    attention: (B, K_f + K_c, N): the K_f fine heads first, then the K_c coarse heads (only the K_f fine
        heads without the coarse branch); zero on padding. `split_attention` separates them.
    embeddings: (B, K_f, 256) L2-normalised fine class-wise embeddings e.
    aux_losses (training with targets): ``ham``, ``hba``, ``supcon`` as switched on in the config;
        ``fine_ce`` and ``coarse_ce`` are computed by the harness. Weights and schedules: `loss_terms`.

Notes:
    Batched over padded bags with masked fp32 softmaxes; a bag gives the same result alone or padded
    in a batch. Deviations from the paper and from the released code: docs/hmil.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.core.contract import MILModel, MILOutput, Targets
from benchmark.core.hierarchy import Hierarchy
from benchmark.models import register_model
from hmil.losses import ham_loss, hba_loss, scl_temperature, supcon_loss
from hmil.nn import ClassWiseGatedAttention, OnlineReEmbedding, build_head, kaiming_init_
from hmil.presets import HMILCodeConfig, HMILConfig, HMILPerClassConfig, loss_terms

__all__ = ["HMIL", "HMILCodeConfig", "HMILConfig", "HMILPerClassConfig", "split_attention"]

TRAIN_DEFAULTS = {"lr": 1e-4, "weight_decay": 0.0, "optimizer": "adam"}  # §10: Adam, lr 1e-4, no weight decay
REFERENCE_TRAIN = {"batch_size": 64}  # §10: 64 bags per step (train.preset=reference)


def split_attention(attention: torch.Tensor, n_fine: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(B, K_f [+ K_c], N) → fine (B, K_f, N) and coarse (B, K_c, N) attention (None without coarse heads)."""
    coarse = attention[:, n_fine:]
    return attention[:, :n_fine], (coarse if coarse.shape[1] else None)


class HMIL(MILModel):
    """Dual-branch class-wise gated-attention MIL with hierarchical alignment losses.

    Args:
        config: an `HMILConfig` (paper preset) or `HMILCodeConfig`.
        in_dim: offline feature width d (only W1 depends on it).
        hierarchy: the fine → coarse tree; gives K_f, K_c and the roll-up matrix M.
    """

    permutation_invariant = True

    def __init__(self, config: HMILConfig, *, in_dim: int, hierarchy: Hierarchy) -> None:
        super().__init__(in_dim=in_dim, n_classes=hierarchy.n_fine)
        self.config = config
        self.n_coarse = hierarchy.n_coarse
        # Not persistent: the hierarchy comes from the constructor, checkpoints hold weights only.
        self.register_buffer("roll_up", torch.from_numpy(hierarchy.matrix), persistent=False)  # (K_f, K_c)
        self.register_buffer("parent", torch.tensor(hierarchy.parent, dtype=torch.long), persistent=False)
        c = config
        self.embed = OnlineReEmbedding(in_dim, c.hidden_dim, c.coarse_dim, c.fine_dim)
        self.fine_attention = ClassWiseGatedAttention(
            c.fine_dim, c.fine_attention_dim, hierarchy.n_fine, c.dropout
        )
        # HMIL: one scalar head shared by the K_f class-wise embeddings; head="per_class" gives each its own.
        self.fine_head = build_head(c.head, c.fine_dim, hierarchy.n_fine)
        self.coarse_attention: ClassWiseGatedAttention | None = None
        self.coarse_head: nn.Module | None = None
        if c.use_coarse_branch:
            self.coarse_attention = ClassWiseGatedAttention(
                c.coarse_dim, c.coarse_attention_dim, self.n_coarse, c.dropout
            )
            self.coarse_head = build_head(c.head, c.coarse_dim, self.n_coarse)
        if c.init == "kaiming":  # the released code's init; "torch" keeps every layer's default init
            kaiming_init_(self)

    def _forward(self, x: torch.Tensor, mask: torch.Tensor, targets: Targets | None) -> MILOutput:
        h_c, h_f = self.embed(x)  # (B, N, 1024), (B, N, 256)
        a_f, bag_f = self.fine_attention(h_f, mask)  # (B, K_f, N) fp32, (B, K_f, 256)
        logits = self.fine_head(bag_f)  # (B, K_f)
        embeddings = F.normalize(bag_f.float(), dim=-1, eps=1e-12)  # (B, K_f, 256)
        a_c = coarse_logits = None
        attention = a_f
        if self.coarse_attention is not None and self.coarse_head is not None:
            a_c, bag_c = self.coarse_attention(h_c, mask)  # (B, K_c, N) fp32, (B, K_c, 1024)
            coarse_logits = self.coarse_head(bag_c)  # (B, K_c)
            attention = torch.cat([a_f, a_c], dim=1)  # (B, K_f + K_c, N)
        aux: dict[str, torch.Tensor] = {}
        if targets is not None and self.training:
            aux = self._aux_losses(logits, embeddings, a_f, a_c, mask, targets)
        return MILOutput(
            logits=logits,
            coarse_logits=coarse_logits,
            attention=attention,
            embeddings=embeddings,
            aux_losses=aux,
        )

    def _aux_losses(
        self,
        logits: torch.Tensor,
        embeddings: torch.Tensor,
        a_f: torch.Tensor,
        a_c: torch.Tensor | None,
        mask: torch.Tensor,
        targets: Targets,
    ) -> dict[str, torch.Tensor]:
        """The switched-on auxiliary terms, unweighted; the harness applies λ and the schedules."""
        c = self.config
        valid = mask.any(dim=1)  # (B,) bags with at least one real instance
        coarse = targets.coarse if targets.coarse is not None else self.parent[targets.fine]
        aux: dict[str, torch.Tensor] = {}
        if c.ham_active and a_c is not None:
            aux["ham"] = ham_loss(a_c, a_f, self.roll_up, mask)
        if c.hba_active:
            aux["hba"] = hba_loss(logits, coarse, self.roll_up, form=c.hba_form, valid=valid)
        if c.use_scl:
            # Without a progress (a direct call outside the trainer) the schedule is read at epoch 0.
            progress = targets.progress if targets.progress is not None else 0.0
            tau = scl_temperature(progress, mode=c.scl_tau_mode, tau=c.scl_tau, tau_max=c.scl_tau_max)
            aux["supcon"] = supcon_loss(
                embeddings,
                targets.fine,
                tau=tau,
                tau_base=c.scl_tau_base,
                positives=c.scl_positives,
                divide_by_batch=c.scl_divide_by_batch,
                valid=valid,
            )
        return aux


register_model(
    "hmil",
    config=HMILConfig,
    description="HMIL (Jin et al. 2025), paper preset: HAM + HBA(NLL) under linear β, SupCon τ=0.1 under 1−β",
    loss=loss_terms,
    train_defaults=TRAIN_DEFAULTS,
    reference_train=REFERENCE_TRAIN,
)(HMIL)


# Same class, other preset: the registry maps each name to (class, config defaults, loss terms).
register_model(
    "hmil-code",
    config=HMILCodeConfig,
    description="HMIL, released-code preset: quadratic α, HBA CE-on-probs, cosine-τ SupCon ÷B, HAM logged only",
    loss=loss_terms,
    train_defaults=TRAIN_DEFAULTS,
    reference_train=REFERENCE_TRAIN,
)(HMIL)


register_model(
    "hmil-pc",
    config=HMILPerClassConfig,
    description="HMIL with per-class heads (not in the paper): paper losses, PyTorch default init",
    loss=loss_terms,
    train_defaults=TRAIN_DEFAULTS,
    reference_train=REFERENCE_TRAIN,
)(HMIL)
