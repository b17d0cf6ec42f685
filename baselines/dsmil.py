"""DSMIL: dual-stream MIL with critical-instance attention (Li, Li & Eliceiri, CVPR 2021).

baselines.md §5, written from the equations (no reference code). For one bag X ∈ R^{N×d} and C streams::

    c_i   = W_i x_i + b_i                          instance classifier, c ∈ R^{N×C}      (max-pooling stream)
    ĉ_m   = max_i c_{i,m}                          max-stream logit per class, over real instances
    m_c   = argmax_i c_{i,c}                       critical instance of class c, over real instances
    q_i   = tanh(W_2 ReLU(W_1 x_i + b_1) + b_2)    query network, R^d → R^128 (or one Linear)
    A_ic  = softmax_i(⟨q_i, q_{m_c}⟩ / √128)       masked softmax over instances, per class
    B     = Aᵀ V,  V = X (identity)                bag embeddings, C × d
    logits = Conv1d(C → C, kernel d)(B)            a full linear map from the C×d matrix to C logits

Loss (harness-weighted, §5.5): ``0.5·fine_ce + 0.5·max_ce`` with ``max_ce = CE(ĉ, y)``, the reference's
L = ½ L(bag) + ½ L(max). The prediction is the bag stream (2024 default); the max stream is only trained.

Deviations from the reference, all from baselines.md §5.5 [decision]:
    * Multi-class: C = K streams (the negative class included) with softmax CE on both streams.
      ``multilabel=True`` restores the reference form: K − 1 positive-class streams, class 0 is the
      negative class (all-zero target), BCE-with-logits on both streams (terms ``bag_bce``/``max_bce``);
      ``logits = [0, s_1..s_{K-1}]`` so that softmax equals σ(s) for K = 2 and argmax predicts class 0
      exactly when every σ(s_k) < ½.
    * Padding gets −inf before the max, the argmax and the softmax (§5.1), so it is never selected.
    * No patch dropout (the reference's ``dropout_patch``, default 0): the harness's ``max_instances``
      subsampling plays that role, and the reference's test-time dropout pitfall (§5.4) cannot occur.
    * Init: orthogonal weights and zero biases on every Linear and the Conv1d (2024 code, §5.3); never
      the reference's ``init.pth`` (§5.4).
    * ``attn_entropy`` (weight 0, detached) logs the mean normalised entropy of the attention (1 =
      uniform), because degenerate uniform attention is DSMIL's known failure mode (§5.4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.core.config import LossTerm
from benchmark.core.contract import MILModel, MILOutput, Targets, masked_softmax
from benchmark.core.errors import ConfigError
from benchmark.core.hierarchy import Hierarchy
from benchmark.models import register_model

__all__ = ["DSMIL", "DSMILConfig", "dsmil_loss_terms", "masked_argmax", "normalised_entropy"]


@dataclass(frozen=True)
class DSMILConfig:
    """Hyperparameters of DSMIL.

    Attributes:
        q_dim: query width (128).
        nonlinear_q: query network Linear → ReLU → Linear → tanh (the default since 2022); False gives a
            single Linear(d, q_dim).
        passing_v: value network Dropout(dropout_v) → Linear(d, d) → ReLU instead of the identity.
        dropout_v: dropout of the value network (only with ``passing_v``).
        multilabel: the reference binary / multi-label BCE form (K − 1 positive streams, class 0 negative).
    """

    q_dim: int = 128
    nonlinear_q: bool = True
    passing_v: bool = False
    dropout_v: float = 0.0
    multilabel: bool = False

    def __post_init__(self) -> None:
        if self.q_dim < 1:
            raise ConfigError(f"model.q_dim must be ≥ 1, got {self.q_dim}; the reference uses 128.")
        if not 0.0 <= self.dropout_v < 1.0:
            raise ConfigError(f"model.dropout_v must be in [0, 1), got {self.dropout_v}.")


def dsmil_loss_terms(config: DSMILConfig) -> tuple[LossTerm, ...]:
    """½ bag + ½ max stream, as in the reference training script (§5.2); attention entropy logged only."""
    if config.multilabel:
        # fine_ce (CE on [0, s]) stays visible in the logs but the reference BCE terms are what train.
        return (
            LossTerm("fine_ce", 0.0),
            LossTerm("bag_bce", 0.5),
            LossTerm("max_bce", 0.5),
            LossTerm("attn_entropy", 0.0),
        )
    return LossTerm("fine_ce", 0.5), LossTerm("max_ce", 0.5), LossTerm("attn_entropy", 0.0)


def masked_argmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Index of the largest score over real instances.

    Args:
        scores: (B, N, C) per-instance scores. mask: (B, N) bool, True on real instances.

    Returns:
        (B, C) long indices into N; 0 for a row without real instances.
    """
    return scores.float().masked_fill(~mask.unsqueeze(-1), float("-inf")).argmax(dim=1)


def normalised_entropy(attention: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over bags (≥ 2 real instances) and heads of H(a) / log n, in [0, 1]; 1 = uniform attention.

    Args:
        attention: (B, H, N) masked attention (rows sum to 1). mask: (B, N) bool.
    """
    n = mask.sum(-1).float()  # (B,)
    a = attention.float()
    ent = -(a * torch.log(a.clamp_min(1e-30))).sum(-1)  # (B, H); 0·log 0 = 0 on padding
    keep = n >= 2
    ratio = ent / torch.log(n.clamp_min(2.0)).unsqueeze(-1)
    return (ratio.mean(-1) * keep).sum() / keep.sum().clamp_min(1)


class DSMIL(MILModel):
    """Dual-stream MIL: instance max-pooling stream + critical-instance attention stream."""

    permutation_invariant = True

    def __init__(self, config: DSMILConfig, *, in_dim: int, hierarchy: Hierarchy) -> None:
        super().__init__(in_dim=in_dim, n_classes=hierarchy.n_fine)
        self.config = config
        n_fine = hierarchy.n_fine
        if config.multilabel and n_fine < 2:
            raise ConfigError(f"model.multilabel needs ≥ 2 fine classes (class 0 = negative), got {n_fine}.")
        self.n_streams = n_fine - 1 if config.multilabel else n_fine
        c, d, q = self.n_streams, in_dim, config.q_dim
        self.instance_classifier = nn.Linear(d, c)
        if config.nonlinear_q:
            self.query = nn.Sequential(nn.Linear(d, q), nn.ReLU(), nn.Linear(q, q), nn.Tanh())
        else:
            self.query = nn.Linear(d, q)
        self.value: nn.Module = (
            nn.Sequential(nn.Dropout(config.dropout_v), nn.Linear(d, d), nn.ReLU())
            if config.passing_v
            else nn.Identity()
        )
        # Conv1d(C, C, kernel d) on the C×d bag matrix = one linear map from all C embeddings to each logit.
        self.bag_classifier = nn.Conv1d(c, c, kernel_size=d)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Conv1d)):
                nn.init.orthogonal_(module.weight)
                nn.init.zeros_(module.bias)

    def _forward(self, x: torch.Tensor, mask: torch.Tensor, targets: Targets | None) -> MILOutput:
        real = mask.unsqueeze(-1)  # (B, N, 1)
        inst = self.instance_classifier(x)  # (B, N, C)
        any_real = mask.any(1, keepdim=True)  # (B, 1)
        max_logits = inst.float().masked_fill(~real, float("-inf")).amax(1)  # (B, C)
        max_logits = torch.where(any_real, max_logits, torch.zeros_like(max_logits))
        critical = masked_argmax(inst, mask)  # (B, C)

        q = self.query(x)  # (B, N, Q)
        q_crit = torch.gather(q, 1, critical.unsqueeze(-1).expand(-1, -1, q.shape[-1]))  # (B, C, Q)
        scores = torch.bmm(q_crit, q.transpose(1, 2)) / math.sqrt(q.shape[-1])  # (B, C, N)
        attention = masked_softmax(scores, mask.unsqueeze(1))  # (B, C, N), fp32, 0 on padding
        # Zero padded values so that non-finite padding cannot leak through 0 · inf.
        v = self.value(x).masked_fill(~real, 0.0)  # (B, N, d)
        bag = torch.bmm(attention.to(v.dtype), v)  # (B, C, d)
        bag_logits = self.bag_classifier(bag).squeeze(-1)  # (B, C)

        logits = bag_logits
        if self.config.multilabel:
            logits = torch.cat([bag_logits.new_zeros(bag_logits.shape[0], 1), bag_logits], dim=1)
        out = MILOutput(logits=logits, attention=attention, embeddings=bag)
        if targets is not None and self.training:
            out.aux_losses = self._aux_losses(bag_logits, max_logits, targets.fine, attention, mask)
        return out

    def _aux_losses(
        self,
        bag_logits: torch.Tensor,
        max_logits: torch.Tensor,
        fine: torch.Tensor,
        attention: torch.Tensor,
        mask: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Max-stream loss (and the bag BCE in multi-label form), plus the logged attention entropy."""
        aux = {"attn_entropy": normalised_entropy(attention.detach(), mask)}
        if self.config.multilabel:
            # One-hot over the positive classes; the negative class 0 is the all-zero target.
            onehot = F.one_hot(fine, self.n_streams + 1)[:, 1:].float()
            aux["bag_bce"] = F.binary_cross_entropy_with_logits(bag_logits.float(), onehot)
            aux["max_bce"] = F.binary_cross_entropy_with_logits(max_logits, onehot)
        else:
            aux["max_ce"] = F.cross_entropy(max_logits, fine)
        return aux


register_model(
    "dsmil",
    config=DSMILConfig,
    description="DSMIL (Li et al. 2021): max-pooling instance stream + critical-instance attention, q 128",
    loss=dsmil_loss_terms,
    # 2024 reference: Adam (L2 decay), lr 1e-4, wd 1e-3 (§5.3). Not reproduced: betas (0.5, 0.9) (the
    # harness uses Adam's defaults) and the cosine LR schedule; one slide per step with train.preset=reference.
    train_defaults={"lr": 1e-4, "weight_decay": 1e-3, "optimizer": "adam"},
    reference_train={"batch_size": 1},
)(DSMIL)
