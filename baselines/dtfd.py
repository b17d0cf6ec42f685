"""DTFD-MIL: double-tier feature distillation over pseudo-bags (Zhang et al., CVPR 2022).

baselines.md §6, written from the equations (no reference code). For one bag X ∈ R^{N×d}::

    h_k   = ReLU(W_r x_k)  (+ optional bias-free residual blocks)       W_r: d → 512, no bias
    split the N real instances into M pseudo-bags P_1..P_M of near-equal size (sizes as np.array_split)
    tier 1, per pseudo-bag g:
        a_k  = softmax_{k ∈ P_g}(gated attention(h_k));   f_g = Σ_k a_k h_k;   ŷ_g = W_1 f_g + b_1
        L0   = mean_g CE(ŷ_g, y)                                              aux term ``tier1_ce``
    instance probability (Grad-CAM of the linear head): p_k = softmax_c(w_{1,c}ᵀ (a_k h_k))
    distillation per pseudo-bag: AFS → f_g;  MaxS → the top-k h_k by p_k;  MaxMinS → top-k and bottom-k
    tier 2: gated attention MIL over the distilled vectors → slide logits     (``fine_ce``)

Loss: ``fine_ce + tier1_ce`` with the tier-2 input **detached** (§6.3): tier 1 then learns from L0 only
and tier 2 from L1 only, which reproduces the reference's two Adam optimisers with one optimiser and
avoids the reference's in-place autograd crash. ``detach_tier2=False`` lets L1 reach tier 1 (MIL-Lab).

Pseudo-bags (§6.2, §7.2), batched with masks so that a bag's result never depends on its padding:
    * training: a fresh uniform random partition per bag from ``torch.randperm`` on the global CPU
      generator (seeded by the harness), drawn bag by bag over that bag's real instances only;
    * evaluation: a deterministic pseudo-random partition keyed by each instance's feature bits and
      multipliers drawn at model init (a persistent buffer, so it follows the run seed and the
      checkpoint). This is the spec's "seed test-time chunking from (run seed, slide id)" without slide
      ids: the same slide always gets the same chunks, whatever its batch, padding or instance order.
    * A bag with N < M real instances gets N singleton pseudo-bags (empty chunks are dropped).

Deviations from the reference [decision, §6.5]: multi-class ranking uses the target class in training
and each pseudo-bag's tier-1 predicted class otherwise (the reference always ranks by the last class;
for binary MaxMinS the selected set is identical). No gradient clipping (the harness has none; the
reference clips each module at 5). One chunking at test (``num_MeanInference`` = 1, as the reference).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from baselines.abmil import GatedAttention
from benchmark.core.config import LossTerm
from benchmark.core.contract import MILModel, MILOutput, Targets, masked_softmax
from benchmark.core.errors import ConfigError
from benchmark.core.hierarchy import Hierarchy
from benchmark.models import register_model

__all__ = ["DISTILL_MODES", "DTFD", "DTFDConfig", "group_of_rank", "pseudo_bag_ids"]

DISTILL_MODES = ("afs", "maxmins", "maxs")
_PRIME = 2_147_483_647  # 2^31 − 1: all hash arithmetic stays exact in int64
_HASH_DIMS = 128  # feature dimensions hashed for the evaluation chunking


@dataclass(frozen=True)
class DTFDConfig:
    """Hyperparameters of DTFD-MIL (reference values, §6.4).

    Attributes:
        hidden_dim: width of the bias-free dimension reduction (mDim 512).
        attention_dim: gated-attention width of both tiers (128).
        n_pseudo_bags: pseudo-bags per slide M (numGroup 4, train and test).
        distill: "afs" (pooled pseudo-bag feature, the reference default), "maxmins" or "maxs".
        instances_per_group: k instances kept per pseudo-bag by MaxS/MaxMinS (total_instance / numGroup = 1).
        n_residual: bias-free residual blocks after the dimension reduction (numLayer_Res 0).
        dropout: dropout before the tier-1 and tier-2 classifiers (droprate, droprate_2: 0).
        detach_tier2: feed tier 2 detached distilled features (the single-optimiser equivalent, §6.3).
    """

    hidden_dim: int = 512
    attention_dim: int = 128
    n_pseudo_bags: int = 4
    distill: str = "afs"
    instances_per_group: int = 1
    n_residual: int = 0
    dropout: float = 0.0
    detach_tier2: bool = True

    def __post_init__(self) -> None:
        if self.distill not in DISTILL_MODES:
            raise ConfigError(
                f"model.distill={self.distill!r} is not a distillation; choose one of {DISTILL_MODES}."
            )
        for name in ("hidden_dim", "attention_dim", "n_pseudo_bags", "instances_per_group"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be ≥ 1, got {getattr(self, name)}.")
        if self.n_residual < 0 or not 0.0 <= self.dropout < 1.0:
            raise ConfigError("model.n_residual must be ≥ 0 and model.dropout in [0, 1).")


def group_of_rank(rank: torch.Tensor, n: torch.Tensor, m: int) -> torch.Tensor:
    """Pseudo-bag of the instance at position ``rank`` of a shuffled bag of ``n``, as np.array_split.

    The first n mod m chunks hold ⌈n/m⌉ instances, the others ⌊n/m⌋; with n < m the n instances are
    singletons 0..n−1. Args: rank (B, N) long; n (B, 1) long. Returns (B, N) long.
    """
    q, rem = n // m, n % m
    big = rem * (q + 1)  # instances in the larger chunks
    return torch.where(rank < big, rank // (q + 1), rem + (rank - big) // q.clamp_min(1))


def pseudo_bag_ids(rank: torch.Tensor, mask: torch.Tensor, m: int) -> torch.Tensor:
    """(B, N) pseudo-bag index of every real instance, −1 on padding; ``rank`` orders the real instances."""
    groups = group_of_rank(rank, mask.sum(1, keepdim=True), m)
    return groups.masked_fill(~mask, -1)


class _Residual(nn.Module):
    """h + ReLU(W_b ReLU(W_a h)), bias-free (the reference's optional residual block)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Linear(dim, dim, bias=False), nn.ReLU(), nn.Linear(dim, dim, bias=False), nn.ReLU()
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.block(h)


class DTFD(MILModel):
    """Two-tier DTFD-MIL with masked, batched pseudo-bags. Output logits are tier 2's."""

    # Evaluation chunking is a function of instance contents, so the eval output ignores instance order.
    permutation_invariant = True

    def __init__(self, config: DTFDConfig, *, in_dim: int, hierarchy: Hierarchy) -> None:
        super().__init__(in_dim=in_dim, n_classes=hierarchy.n_fine)
        self.config = config
        hid, att, c = config.hidden_dim, config.attention_dim, hierarchy.n_fine
        self.reduce = nn.Sequential(
            nn.Linear(in_dim, hid, bias=False), nn.ReLU(), *[_Residual(hid) for _ in range(config.n_residual)]
        )
        self.attention1 = GatedAttention(hid, att)
        self.classifier1 = nn.Linear(hid, c)
        self.attention2 = GatedAttention(hid, att)
        self.classifier2 = nn.Linear(hid, c)
        self.drop = nn.Dropout(config.dropout)
        # Evaluation-chunking hash: fixed feature dims, and per-run odd multipliers (persistent buffer).
        k = min(in_dim, _HASH_DIMS)
        self.register_buffer("hash_dims", torch.linspace(0, in_dim - 1, k).round().long(), persistent=False)
        self.register_buffer("hash_mult", torch.randint(0, 1 << 15, (2, k)) * 2 + 1)

    # -- pseudo-bags -------------------------------------------------------------------------------
    def _random_rank(self, mask: torch.Tensor) -> torch.Tensor:
        """(B, N) position of each real instance in a uniform random shuffle of its own bag."""
        rank = torch.zeros(mask.shape, dtype=torch.long)
        mask_cpu = mask.cpu()
        for b in range(mask.shape[0]):  # bag by bag: the draw depends only on this bag's size
            pos = mask_cpu[b].nonzero().squeeze(1)
            rank[b, pos] = torch.randperm(len(pos))
        return rank.to(mask.device)

    def _content_rank(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, N) position of each real instance when its bag is sorted by a hash of its feature bits."""
        bits = x[..., self.hash_dims].float().contiguous().view(torch.int32).long() & 0xFFFFFFFF
        # Exact integer arithmetic: the same instance hashes identically on any device, batch or padding.
        s = ((bits & 0xFFFF) * self.hash_mult[0] + (bits >> 16) * self.hash_mult[1]).sum(-1)  # < 2^48
        key = (s % _PRIME) * 48_271 % _PRIME
        key = key.masked_fill(~mask, _PRIME)  # padding sorts last
        order = torch.argsort(key, dim=1, stable=True)
        positions = torch.arange(mask.shape[1], device=mask.device).expand_as(order)
        return torch.empty_like(order).scatter(1, order, positions)

    def _pseudo_bags(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        rank = self._random_rank(mask) if self.training else self._content_rank(x, mask)
        return pseudo_bag_ids(rank, mask, self.config.n_pseudo_bags)

    # -- distillation ------------------------------------------------------------------------------
    def _select(
        self, h: torch.Tensor, a1: torch.Tensor, groups: torch.Tensor, rank_class: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """MaxS / MaxMinS instance selection per pseudo-bag.

        Args:
            h: (B, N, E) instance features. a1: (B, M, N) tier-1 attention. groups: (B, M, N) bool
            membership of real instances. rank_class: (B, M) class by which each pseudo-bag ranks.

        Returns:
            features (B, S, E), validity (B, S) bool and instance indices (B, S), S = M·k (MaxS) or 2·M·k.
        """
        b, m, n = a1.shape
        k = min(self.config.instances_per_group, n)
        with torch.no_grad():  # the ranking only picks indices; no gradient flows through it
            a_inst = a1.sum(1)  # (B, N): every instance sits in exactly one pseudo-bag
            cam = a_inst.unsqueeze(-1) * F.linear(
                h.float(), self.classifier1.weight.float()
            )  # (B, N, C), no bias
            # log p ranks like p without saturating to ties at p = 1.
            logp = torch.log_softmax(cam, dim=-1).transpose(1, 2)  # (B, C, N)
            score = torch.gather(logp, 1, rank_class.unsqueeze(-1).expand(b, m, n))  # (B, M, N)
        size = groups.sum(-1, keepdim=True)  # (B, M, 1)
        slot = torch.arange(k, device=h.device)
        # Stable sorts: ties resolve by position among real instances, identical with or without padding.
        top = torch.sort(score.masked_fill(~groups, float("-inf")), dim=-1, descending=True, stable=True)[1][
            ..., :k
        ]
        idx, valid = [top], [slot < size]
        if self.config.distill == "maxmins":
            bottom = torch.sort(score.masked_fill(~groups, float("inf")), dim=-1, stable=True)[1][..., :k]
            idx.append(bottom)
            valid.append(slot < size)
        idx_all = torch.cat(idx, dim=-1).reshape(b, -1)  # (B, S)
        valid_all = torch.cat(valid, dim=-1).reshape(b, -1)
        feats = torch.gather(h, 1, idx_all.unsqueeze(-1).expand(-1, -1, h.shape[-1]))
        return feats, valid_all, idx_all

    # -- forward -----------------------------------------------------------------------------------
    def _forward(self, x: torch.Tensor, mask: torch.Tensor, targets: Targets | None) -> MILOutput:
        cfg = self.config
        h = self.reduce(x)  # (B, N, E)
        e1 = self.attention1(h).squeeze(-1)  # (B, N) attention logits, computed once on the whole bag
        ids = self._pseudo_bags(x, mask)  # (B, N)
        groups = ids.unsqueeze(1) == torch.arange(cfg.n_pseudo_bags, device=x.device).view(
            1, -1, 1
        )  # (B, M, N)
        a1 = masked_softmax(e1.unsqueeze(1).expand_as(groups), groups)  # (B, M, N), softmax within each chunk
        f = torch.bmm(a1.to(h.dtype), h)  # (B, M, E) pseudo-bag features
        nonempty = groups.any(-1)  # (B, M)
        tier1 = self.classifier1(self.drop(f))  # (B, M, C)

        train_targets = targets is not None and self.training
        if cfg.distill == "afs":
            feats2, valid2, inst_idx = f, nonempty, None
        else:
            rank_class = targets.fine.unsqueeze(1).expand_as(nonempty) if train_targets else tier1.argmax(-1)
            feats2, valid2, inst_idx = self._select(h, a1, groups, rank_class)
        if cfg.detach_tier2:
            feats2 = feats2.detach()

        a2 = masked_softmax(self.attention2(feats2).transpose(1, 2), valid2.unsqueeze(1))  # (B, 1, S)
        z = torch.bmm(a2.to(feats2.dtype), feats2).squeeze(1)  # (B, E)
        logits = self.classifier2(self.drop(z))

        out = MILOutput(logits=logits, attention=self._instance_weights(a1, a2, ids, inst_idx), embeddings=z)
        if train_targets:
            out.aux_losses = {"tier1_ce": self._tier1_loss(tier1, nonempty, targets.fine)}
        return out

    @staticmethod
    def _tier1_loss(tier1: torch.Tensor, nonempty: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        """Mean over bags of the mean CE of their non-empty pseudo-bags; bags without any are skipped."""
        b, m, c = tier1.shape
        ce = F.cross_entropy(tier1.float().reshape(-1, c), fine.repeat_interleave(m), reduction="none").view(
            b, m
        )
        per_bag = (ce * nonempty).sum(1) / nonempty.sum(1).clamp_min(1)
        has = nonempty.any(1)
        return (per_bag * has).sum() / has.sum().clamp_min(1)

    @staticmethod
    def _instance_weights(
        a1: torch.Tensor, a2: torch.Tensor, ids: torch.Tensor, inst_idx: torch.Tensor | None
    ) -> torch.Tensor:
        """(B, 1, N) each instance's share of the slide embedding (detached; 0 on padding).

        AFS: a2 of its pseudo-bag times its tier-1 weight (sums to 1). MaxS/MaxMinS: the tier-2 weight of
        every distilled copy of the instance.
        """
        a1, a2 = a1.detach(), a2.detach().squeeze(1)  # (B, M, N), (B, S)
        if inst_idx is None:
            w = torch.gather(a2, 1, ids.clamp_min(0)) * a1.sum(1) * (ids >= 0)
        else:
            w = torch.zeros(a1.shape[0], a1.shape[2], device=a2.device).scatter_add(1, inst_idx, a2)
        return w.unsqueeze(1)


register_model(
    "dtfd",
    config=DTFDConfig,
    description="DTFD-MIL (Zhang et al. 2022): two-tier attention over 4 pseudo-bags, AFS distillation",
    loss=(LossTerm("fine_ce", 1.0), LossTerm("tier1_ce", 1.0)),
    # Reference: 2× Adam (L2 decay), lr 1e-4, wd 1e-4 (§6.4); one Adam is equivalent with detached tier-2
    # inputs (§6.3). Not reproduced: clipping at 5, MultiStepLR; one slide per step with train.preset=reference.
    train_defaults={"lr": 1e-4, "weight_decay": 1e-4, "optimizer": "adam"},
    reference_train={"batch_size": 1},
)(DTFD)
