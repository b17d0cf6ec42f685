"""CLAM-SB and CLAM-MB (Lu et al., Nature BME 2021), batched over padded bags.

Written from baselines.md §3 (no reference code). One bag, h_i ∈ R^512::

    h_i  = Dropout_p(ReLU(W_1 x_i + b_1))                               x_i ∈ R^d
    s_i  = W_c [Dropout(tanh(V h_i)) ⊙ Dropout(sigm(U h_i))] + b_c       s_i ∈ R^1 (SB) or R^C (MB)
    A    = softmax over the real instances of s                          (1, N) or (C, N)
    M    = A H;  logits = W_cls M (SB: Linear 512→C)  or  logit_c = w_cᵀ M_c + b_c (MB, per-class heads)

Instance-level clustering loss (training only, §3.2): `baselines._clam_instance.clam_instance_loss`. The
model returns its mean over the bags of the batch as ``aux_losses["instance"]``; the harness weights it 0.3
against 0.7 · bag CE (bag_weight 0.7).

Notes:
    Top-k runs on the raw attention scores (see `baselines._clam_instance`).
    Every Linear gets Xavier-normal weights and zero biases (the code at publication time, §3.1).
    Instance heads of classes absent from a batch receive a zero (not a missing) gradient, as they did
    in the reference under the PyTorch 1.x it was published with (``zero_grad`` zeroed, not None).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from baselines._clam_instance import clam_instance_loss, masked_topk
from benchmark.core.config import LossTerm
from benchmark.core.contract import MILModel, MILOutput, Targets, masked_softmax
from benchmark.core.errors import ConfigError
from benchmark.core.hierarchy import Hierarchy
from benchmark.models import register_model

__all__ = ["CLAM", "CLAMConfig", "CLAMMB", "CLAMSB", "clam_instance_loss", "clam_loss_terms", "masked_topk"]

# size_arg of the reference: (embedding width, attention width D) after the first layer.
SIZES = {"small": (512, 256), "big": (512, 384)}
ATTENTION_DROPOUT = 0.25  # hard-coded on the attention branches whenever dropout is on (§3.1)
BAG_WEIGHT, INSTANCE_WEIGHT = 0.7, 0.3  # w_bag and 1 − w_bag, written out so the recorded weight is exact


@dataclass(frozen=True)
class CLAMConfig:
    """Hyperparameters of CLAM-SB / CLAM-MB.

    Attributes:
        size: "small" ([d, 512, 256], the reference default) or "big" ([d, 512, 384]).
        dropout: dropout after the first layer; when > 0 the attention branches also get p = 0.25.
        gated: gated attention (tanh ⊙ sigmoid); False keeps the single tanh branch.
        k_sample: k, the number of pseudo-labelled instances per branch (``--B``).
        subtyping: add the out-of-class branches (targets 0 under g_i, i ≠ y) and divide by C. Set it
            True for mutually exclusive subtypes (BRACS fine and coarse, RCC, NSCLC); keep it False for
            grading (PANDA ISUP), where high-attention regions can show other grades (baselines.md §3.4).
        instance_loss: "svm" (smooth top-1 SVM, α = τ = 1; the README setting) or "ce".
        use_instance_loss: False is the reference ``--no_inst_cluster``: bag loss only, no "instance"
            loss term (the instance heads stay in the model, unused, as in the reference).
    """

    size: str = "small"
    dropout: float = 0.25
    gated: bool = True
    k_sample: int = 8
    subtyping: bool = False
    instance_loss: str = "svm"
    use_instance_loss: bool = True

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ConfigError(f"model.size={self.size!r} is not a CLAM size; use one of {sorted(SIZES)}.")
        if self.instance_loss not in ("svm", "ce"):
            raise ConfigError(f"model.instance_loss={self.instance_loss!r} is unknown; use 'svm' or 'ce'.")
        if self.k_sample < 1:
            raise ConfigError(f"model.k_sample={self.k_sample} must be ≥ 1; the reference uses 8.")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout={self.dropout} must be in [0, 1); the reference uses 0.25.")


def clam_loss_terms(config: CLAMConfig) -> tuple[LossTerm, ...]:
    """0.7 · bag CE + 0.3 · instance loss; the bag CE alone with ``use_instance_loss=False``."""
    if not config.use_instance_loss:
        return (LossTerm("fine_ce"),)
    return (LossTerm("fine_ce", BAG_WEIGHT), LossTerm("instance", INSTANCE_WEIGHT))


class _AttentionNet(nn.Module):
    """Scores s (B, N, H) from h (B, N, M): gated (tanh ⊙ sigmoid) or plain tanh, dropout on the branches."""

    def __init__(self, in_dim: int, attention_dim: int, n_heads: int, *, gated: bool, dropout: float) -> None:
        super().__init__()
        self.a = nn.Sequential(nn.Linear(in_dim, attention_dim), nn.Tanh(), nn.Dropout(dropout))
        self.b = (
            nn.Sequential(nn.Linear(in_dim, attention_dim), nn.Sigmoid(), nn.Dropout(dropout))
            if gated
            else None
        )
        self.c = nn.Linear(attention_dim, n_heads)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a = self.a(h)
        if self.b is not None:
            a = a * self.b(h)
        return self.c(a)


class CLAM(MILModel):
    """CLAM-SB (``multi_branch=False``) or CLAM-MB; subclasses fix the variant for the registry."""

    permutation_invariant = True
    multi_branch = False

    def __init__(self, config: CLAMConfig, *, in_dim: int, hierarchy: Hierarchy) -> None:
        super().__init__(in_dim=in_dim, n_classes=hierarchy.n_fine)
        self.config = config
        width, att_dim = SIZES[config.size]
        c = hierarchy.n_fine
        self.embed = nn.Sequential(nn.Linear(in_dim, width), nn.ReLU(), nn.Dropout(config.dropout))
        self.attention = _AttentionNet(
            width,
            att_dim,
            c if self.multi_branch else 1,
            gated=config.gated,
            dropout=ATTENTION_DROPOUT if config.dropout > 0 else 0.0,
        )
        if self.multi_branch:
            self.classifiers = nn.ModuleList(nn.Linear(width, 1) for _ in range(c))  # one head per class
        else:
            self.classifier = nn.Linear(width, c)
        self.instance_classifiers = nn.ModuleList(nn.Linear(width, 2) for _ in range(c))
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_normal_(module.weight)
                nn.init.zeros_(module.bias)

    def _forward(self, x: torch.Tensor, mask: torch.Tensor, targets: Targets | None) -> MILOutput:
        h = self.embed(x)  # (B, N, 512), after dropout: what the instance heads see too
        scores = self.attention(h).transpose(1, 2)  # (B, H, N), H = 1 (SB) or C (MB)
        a = masked_softmax(scores, mask.unsqueeze(1))  # fp32, 0 on padding
        pooled = torch.bmm(a.to(h.dtype), h)  # (B, H, 512)
        if self.multi_branch:
            w = torch.cat([head.weight for head in self.classifiers])  # (C, 512)
            b = torch.cat([head.bias for head in self.classifiers])  # (C,)
            logits = (pooled * w).sum(dim=-1) + b
            embeddings = pooled
        else:
            embeddings = pooled.squeeze(1)
            logits = self.classifier(embeddings)
        out = MILOutput(logits=logits, attention=a, embeddings=embeddings)
        if targets is not None and self.training and self.config.use_instance_loss:
            weight = torch.stack([head.weight for head in self.instance_classifiers])  # (C, 2, 512)
            bias = torch.stack([head.bias for head in self.instance_classifiers])  # (C, 2)
            per_bag = clam_instance_loss(
                scores,
                h,
                mask,
                targets.fine,
                weight,
                bias,
                k=self.config.k_sample,
                subtyping=self.config.subtyping,
                criterion=self.config.instance_loss,
            )
            out.aux_losses["instance"] = per_bag.mean()
        return out


class CLAMSB(CLAM):
    """CLAM single-branch: one attention row shared by all classes."""

    multi_branch = False


class CLAMMB(CLAM):
    """CLAM multi-branch: one attention row and one bag head per class."""

    multi_branch = True


_TRAIN_DEFAULTS = {"lr": 2e-4, "weight_decay": 1e-5}  # every README command (§3.5)
_REFERENCE_TRAIN = {"batch_size": 1}  # CLAM trains one slide per step

register_model(
    "clam-sb",
    config=CLAMConfig,
    loss=clam_loss_terms,
    train_defaults=_TRAIN_DEFAULTS,
    reference_train=_REFERENCE_TRAIN,
    description="CLAM single-branch (Lu et al. 2021): gated attention 512/256, instance clustering loss",
)(CLAMSB)
register_model(
    "clam-mb",
    config=CLAMConfig,
    loss=clam_loss_terms,
    train_defaults=_TRAIN_DEFAULTS,
    reference_train=_REFERENCE_TRAIN,
    description="CLAM multi-branch (Lu et al. 2021): per-class attention and heads, instance clustering loss",
)(CLAMMB)
