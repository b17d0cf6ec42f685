"""Attention of a trained model on one slide, one row per head, each head named.

Class-wise models (HMIL, CLAM-MB, DSMIL) return one attention head per class: HMIL's K_f fine heads come
first, then its K_c coarse heads (`hmil.model.split_attention`); single-head models (ABMIL, CLAM-SB, DTFD)
return one. Models whose `MILOutput.attention` is None (mean/max pooling, TransMIL) have no heatmap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from benchmark.core.contract import MILModel
from benchmark.core.errors import ConfigError
from benchmark.core.hierarchy import Hierarchy

__all__ = [
    "NoAttentionError",
    "SlideAttention",
    "head_names",
    "percentile_rank",
    "select_heads",
    "slide_attention",
]


class NoAttentionError(ConfigError):
    """The model returns no attention (``MILOutput.attention`` is None), so it has no heatmap."""


@dataclass(frozen=True)
class SlideAttention:
    """One slide's attention and prediction.

    Attributes:
        values: (H, N) float32 attention weights (each head sums to 1 over the N instances).
        heads: (H,) head names: the class a class-wise head attends for, or "attention" for a single head.
        fine_probs: (K_f,) predicted fine-class probabilities.
    """

    values: np.ndarray
    heads: list[str]
    fine_probs: np.ndarray


def head_names(n_heads: int, hierarchy: Hierarchy) -> list[str]:
    """Names of ``n_heads`` attention heads: one per fine class, per fine then coarse class (HMIL), a single
    ``attention`` head, or ``head i`` when the count matches none of these."""
    if n_heads == 1:
        return ["attention"]
    if n_heads == hierarchy.n_fine:
        return list(hierarchy.fine)
    if n_heads == hierarchy.n_fine + len(hierarchy.coarse):
        return list(hierarchy.fine) + [f"coarse {c}" for c in hierarchy.coarse]
    return [f"head {i}" for i in range(n_heads)]


@torch.no_grad()
def slide_attention(
    model: MILModel,
    features: np.ndarray,
    hierarchy: Hierarchy,
    *,
    model_name: str,
    standardize: tuple[np.ndarray, np.ndarray] | None = None,
) -> SlideAttention:
    """Run ``model`` (eval mode, CPU, fp32) on one full bag and keep its attention.

    Args:
        features: (N, D) instance features as stored (standardised here with the fold's statistics).
        standardize: the training part's (mean, std), each (D,), when the fold standardised features.

    Raises:
        NoAttentionError: the model returns no attention.
    """
    model.eval()
    x = np.asarray(features, dtype=np.float32)
    if standardize is not None:
        mean, std = standardize
        x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    xt = torch.from_numpy(np.ascontiguousarray(x)).unsqueeze(0)  # (1, N, D)
    out = model(xt, torch.ones(xt.shape[:2], dtype=torch.bool))
    if out.attention is None:
        raise NoAttentionError(
            f"model {model_name} returns no attention (MILOutput.attention is None), so it has no heatmap; "
            "pick a run of an attention model (abmil, clam-sb, clam-mb, dsmil, dtfd, hmil)."
        )
    values = out.attention[0].float().cpu().numpy()  # (H, N)
    probs = torch.softmax(out.logits[0].float(), -1).cpu().numpy()
    return SlideAttention(values, head_names(values.shape[0], hierarchy), probs)


def select_heads(att: SlideAttention, wanted: str | None) -> list[int]:
    """Indices of the heads to draw: every head, or the one named ``wanted`` (``--class``).

    Raises:
        ConfigError: ``wanted`` names no head of this model.
    """
    if wanted is None:
        return list(range(len(att.heads)))
    if wanted in att.heads:
        return [att.heads.index(wanted)]
    raise ConfigError(
        f"--class {wanted!r}: this model's attention heads are {', '.join(att.heads)}; "
        "pass one of them or leave --class out."
    )


def percentile_rank(values: np.ndarray) -> np.ndarray:
    """(N,) → (N,) in [0, 1]: each instance's rank among the slide's instances (ties averaged), as CLAM's
    heatmaps do, so one extreme weight does not wash out the rest of the slide."""
    n = len(values)
    if n == 1:
        return np.ones(1, dtype=np.float32)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.arange(n)
    # average the ranks of ties, so a constant head maps to one colour (0.5)
    uniq, inverse = np.unique(values, return_inverse=True)
    if len(uniq) < n:
        ranks = (np.bincount(inverse, ranks) / np.bincount(inverse))[inverse]
    return (ranks / (n - 1)).astype(np.float32)
