"""Evaluation of a MIL model on full bags: length-sorted, memory-bounded padded batches, probabilities back
in the caller's order. Shared by the trainer (validation, test), `benchmark perf` and the tuning objective.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.core.contract import MILModel
from benchmark.data.bags import BagCollection, pad_batch
from benchmark.metrics.evaluate import EvaluationResult, evaluate

__all__ = ["Predictions", "autocast", "eval_batches", "evaluate_predictions", "predict"]

# Upper bound on padded floats per evaluation batch (B · N_max · D), so that huge bags are evaluated
# alone instead of exhausting memory. 2^24 floats = 64 MiB in fp32 for x (the activations are a few times
# that): ~16 realistic bags of 1,000 × 1,024 per batch. 2^26 added ~180 MiB to the peak RSS of a realistic
# run; small bags (panda-sim: 32 bags ≤ 2^21 floats) are batched exactly as before.
_EVAL_MAX_ELEMENTS = 1 << 23


def autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


@dataclass
class Predictions:
    """Model outputs on a set of slides.

    Attributes:
        index: (n,) positions in the collection.
        fine_probs: (n, K_f) softmax of the fine logits.
        coarse_head_probs: (n, K_c) softmax of the model's own coarse head, or None.
        fine_ce: mean fine cross-entropy over the n slides.
    """

    index: np.ndarray
    fine_probs: np.ndarray
    coarse_head_probs: np.ndarray | None
    fine_ce: float


def eval_batches(bags: BagCollection, index: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Length-sorted batches bounded by bag count and padded size (less padding, bounded memory)."""
    order = index[np.argsort(bags.lengths[index], kind="stable")]
    batches, current, current_max = [], [], 0
    for i in order:
        n = int(bags.lengths[i])
        new_max = max(current_max, n)
        if current and (
            len(current) >= batch_size or (len(current) + 1) * new_max * bags.dim > _EVAL_MAX_ELEMENTS
        ):
            batches.append(np.asarray(current))
            current, new_max = [], n
        current.append(i)
        current_max = new_max
    if current:
        batches.append(np.asarray(current))
    return batches


@torch.no_grad()
def predict(
    model: MILModel,
    bags: BagCollection,
    index: np.ndarray,
    *,
    batch_size: int,
    device: torch.device,
    amp: bool,
    standardize: tuple[np.ndarray, np.ndarray] | None = None,
) -> Predictions:
    """Evaluate on full bags (no instance cap), returning probabilities in the order of ``index``."""
    model.eval()
    index = np.asarray(index, dtype=np.int64)
    fine_rows, coarse_rows, seen, ce_sum = [], [], [], 0.0
    for chunk in eval_batches(bags, index, batch_size):
        batch = pad_batch(bags, chunk, standardize=standardize).to(device)
        with autocast(device, amp):
            out = model(batch.x, batch.mask)
        logits = out.logits.float()
        ce_sum += float(F.cross_entropy(logits, batch.fine, reduction="sum"))
        fine_rows.append(torch.softmax(logits, -1).cpu().numpy())
        if out.coarse_logits is not None:
            coarse_rows.append(torch.softmax(out.coarse_logits.float(), -1).cpu().numpy())
        seen.append(chunk)
    # Batches were length-sorted; map rows back to the caller's order of ``index``.
    pos = np.concatenate(seen)
    sorter = np.argsort(pos)
    rows = sorter[np.searchsorted(pos, index, sorter=sorter)]
    fine = np.concatenate(fine_rows)[rows]
    coarse = np.concatenate(coarse_rows)[rows] if coarse_rows else None
    return Predictions(
        index=index, fine_probs=fine, coarse_head_probs=coarse, fine_ce=ce_sum / max(len(index), 1)
    )


def evaluate_predictions(bags: BagCollection, preds: Predictions) -> EvaluationResult:
    return evaluate(bags.fine_labels[preds.index], preds.fine_probs, bags.hierarchy, preds.coarse_head_probs)
