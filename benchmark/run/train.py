"""Model-agnostic training of one fold: padded batches, AdamW, early stopping, validation-only selection.

The trainer knows no model: it calls the contract ``forward(x, mask, targets)``, composes the loss
with `benchmark.run.loss_weighting.compose_loss` and selects the checkpoint on a validation metric (ties broken
by the lower validation fine cross-entropy). `fit_fold` trains and selects without any test path (the
tuning objective uses it); `train_fold` adds the single test evaluation after selection.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from benchmark.core.config import RunConfig
from benchmark.core.contract import MILModel, Targets
from benchmark.core.errors import TrainingError
from benchmark.data.bags import BagCollection, instance_statistics, pad_batch
from benchmark.metrics.evaluate import EvaluationResult
from benchmark.run.encoders import build_pipeline
from benchmark.run.inference import Predictions, autocast, evaluate_predictions, predict
from benchmark.run.loss_weighting import compose_loss
from benchmark.run.memory import PeakMemory, release_free_memory
from benchmark.run.outcome import FitResult, FoldOutcome
from benchmark.run.setup import resolve_device, seed_everything, training_batches

__all__ = ["build_model_and_optimizer", "fit_fold", "train_fold"]

log = logging.getLogger(__name__)


def _selection_score(result: EvaluationResult, selection: str) -> float:
    flat = result.flat("val")
    if selection == "fine+coarse.accuracy":
        value = flat["val.fine.accuracy"] + flat["val.coarse.accuracy"]
    else:
        value = flat.get(f"val.{selection}", float("nan"))
    return -math.inf if value is None or math.isnan(value) else float(value)


EpochCallback = Callable[[int, dict[str, float]], None]


def build_model_and_optimizer(
    config: RunConfig, bags: BagCollection, device: torch.device
) -> tuple[MILModel, torch.optim.Optimizer]:
    """A fresh model (with its instance encoder, if any) on ``device`` and its optimiser."""
    tc = config.train
    model = build_pipeline(
        config.model,
        config.model_params,
        in_dim=bags.dim,
        hierarchy=bags.hierarchy,
        encoder=tc.encoder,
        encoder_dim=tc.encoder_dim,
        image_shape=(bags.info or {}).get("image_shape"),
    ).to(device)
    optimizer_cls = torch.optim.AdamW if tc.optimizer == "adamw" else torch.optim.Adam
    # On CUDA one fused kernel per step; on CPU torch's reference loop, which keeps results bit-identical.
    fused = {"fused": True} if device.type == "cuda" else {}
    optimizer = optimizer_cls(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, **fused)
    if tc.compile:  # in place, so state_dict keys (checkpoints) are unchanged; bag lengths vary: dynamic
        model.compile(dynamic=True)
    return model, optimizer


def _validate(
    model: MILModel,
    config: RunConfig,
    bags: BagCollection,
    val_idx: np.ndarray,
    scale: tuple[torch.Tensor, torch.Tensor] | None,
    device: torch.device,
    epoch: int,
    history: list[dict[str, float]],
) -> tuple[Predictions, EvaluationResult]:
    """The epoch's validation predictions and metrics; non-finite predictions raise `TrainingError`."""
    tc = config.train
    preds = predict(
        model, bags, val_idx, batch_size=tc.eval_batch_size, device=device, amp=tc.amp, standardize=scale
    )
    if not np.isfinite(preds.fine_probs).all():
        raise _diverged(config, f"validation predictions are NaN/inf at epoch {epoch}", history)
    return preds, evaluate_predictions(bags, preds)


def _train_epoch(
    model: MILModel,
    optimizer: torch.optim.Optimizer,
    config: RunConfig,
    bags: BagCollection,
    train_idx: np.ndarray,
    epoch: int,
    rng: np.random.Generator,
    scale: tuple[torch.Tensor, torch.Tensor] | None,
    device: torch.device,
) -> tuple[dict[str, float], int]:
    """One pass over the training part in padded batches of ``train.batch_size`` bags (x: (B, N, D), mask:
    (B, N)); returns the bag-weighted sums of the loss terms and the number of optimiser steps."""
    tc = config.train
    model.train()
    sums: dict[str, float] = {}
    steps = 0
    batches = training_batches(
        bags.lengths,
        train_idx,
        tc.batch_size,
        tc.bucket_pool,
        rng,
        max_batch_instances=tc.max_batch_instances,
        max_instances=tc.max_instances,
    )
    for chunk in batches:
        batch = pad_batch(bags, chunk, max_instances=tc.max_instances, rng=rng, standardize=scale).to(device)
        targets = Targets(fine=batch.fine, coarse=batch.coarse, progress=epoch / tc.epochs)
        with autocast(device, tc.amp):
            out = model(batch.x, batch.mask, targets)
        loss, terms = compose_loss(
            out, batch.fine, batch.coarse, config.loss, epoch=epoch, total_epochs=tc.epochs
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        steps += 1
        for k, v in {"loss": float(loss.detach()), **terms}.items():
            sums[k] = sums.get(k, 0.0) + v * len(chunk)
    return sums, steps


@dataclass
class _Checkpoint:
    """The best epoch so far by (selection score ↑, validation fine CE ↓), its weights, and the epochs since."""

    score: tuple[float, float] = (-math.inf, math.inf)
    epoch: int = -1
    val: EvaluationResult | None = None
    state: dict[str, torch.Tensor] | None = None
    stale: int = 0

    def offer(self, score: tuple[float, float], epoch: int, val: EvaluationResult, model: MILModel) -> None:
        """Keep this epoch if it is better (ties on the score broken by the lower loss), else count it stale."""
        if score[0] > self.score[0] or (score[0] == self.score[0] and score[1] < self.score[1]):
            self.score, self.epoch, self.val, self.stale = score, epoch, val, 0
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            self.stale += 1


def fit_fold(
    config: RunConfig,
    bags: BagCollection,
    train_index: np.ndarray,
    val_index: np.ndarray,
    *,
    seed: int,
    on_epoch: EpochCallback | None = None,
) -> FitResult:
    """Train a fresh model on ``train_index`` and select its checkpoint on ``val_index``.

    This function has no test path: it sees only the two index sets it is given. `train_fold` adds the
    single test evaluation; the tuning objective (`benchmark.tune.objective`) calls this directly on a
    collection that holds no test slide at all.

    Args:
        config: the resolved run config.
        bags: the dataset (or a subset of it).
        train_index, val_index: positions of the training and validation slides in ``bags``.
        seed: the fold seed (seeds model init, shuffling and instance sampling).
        on_epoch: called after each epoch with (epoch, metrics) — e.g. MLflow logging, progress bars.
    """
    tc = config.train
    device = resolve_device(tc.device)
    seed_everything(seed)
    model, optimizer = build_model_and_optimizer(config, bags, device)
    rng = np.random.default_rng(seed)
    train_idx = np.asarray(train_index, dtype=np.int64)
    val_idx = np.asarray(val_index, dtype=np.int64)
    scale = instance_statistics(bags, train_idx) if tc.standardize else None  # training part only
    if tc.features_on_device and device.type == "cuda":  # gather batches on the GPU: no per-batch copy
        bags = bags.features_to(device)
    best = _Checkpoint()
    history: list[dict[str, float]] = []
    train_seconds = eval_seconds = 0.0
    steps = 0
    for epoch in range(tc.epochs):
        t0 = time.perf_counter()
        sums, n_steps = _train_epoch(model, optimizer, config, bags, train_idx, epoch, rng, scale, device)
        steps += n_steps
        train_seconds += time.perf_counter() - t0
        t1 = time.perf_counter()
        record = {f"train.{k}": v / len(train_idx) for k, v in sums.items()}
        val_preds, val_result = _validate(
            model, config, bags, val_idx, scale, device, epoch, history + [record]
        )
        eval_seconds += time.perf_counter() - t1
        release_free_memory()  # the epoch's batches are garbage now: give their pages back
        record.update({k: v for k, v in val_result.flat("val").items() if "." not in k.split(".", 2)[-1]})
        record["val.fine_ce"] = val_preds.fine_ce
        history.append(record)
        best.offer((_selection_score(val_result, tc.selection), val_preds.fine_ce), epoch, val_result, model)
        if on_epoch is not None:
            on_epoch(epoch, record)
        if tc.patience and best.stale >= tc.patience and epoch + 1 >= tc.min_epochs:
            log.debug("%s: early stop at epoch %d (best %d)", config.model, epoch, best.epoch)
            break
    if best.state is None:  # no epoch had a finite selection score or validation loss
        raise _diverged(
            config,
            f"no epoch gave a finite validation {tc.selection} or loss in {len(history)} epoch(s)",
            history,
        )
    model.load_state_dict(best.state)
    model.eval()
    return FitResult(
        model=model,
        best_epoch=best.epoch,
        epochs_run=len(history),
        history=history,
        val=best.val,
        state_dict=best.state,
        standardize=scale,
        train_seconds=train_seconds,
        eval_seconds=eval_seconds,
        n_val_evaluated=len(history) * len(val_idx),
        steps=steps,
    )


def _diverged(config: RunConfig, what: str, history: list[dict[str, float]]) -> TrainingError:
    """The one-line error for a run that produced no usable checkpoint, with the usual fixes."""
    last = history[-1].get("train.loss", float("nan")) if history else float("nan")
    return TrainingError(
        f"{config.model}: {what} (last train loss {last:.3g}); the run diverged — lower --lr (now "
        f"{config.train.lr:g}) or standardise the features (--set train.standardize=true)."
    )


def train_fold(
    config: RunConfig,
    bags: BagCollection,
    parts: dict[str, np.ndarray],
    *,
    seed: int,
    on_epoch: EpochCallback | None = None,
) -> FoldOutcome:
    """Train a fresh model on ``parts["train"]``, select on ``parts["val"]``, test once on ``parts["test"]``.

    Args:
        config: the resolved run config.
        bags: the dataset.
        parts: positions of the train/val/test slides in ``bags``.
        seed: the fold seed (seeds model init, shuffling and instance sampling).
        on_epoch: called after each epoch with (epoch, metrics) — e.g. MLflow logging, progress bars.
    """
    tc = config.train
    device = resolve_device(tc.device)
    memory = PeakMemory(device)
    started = time.perf_counter()
    with memory:
        fit = fit_fold(config, bags, parts["train"], parts["val"], seed=seed, on_epoch=on_epoch)
        t2 = time.perf_counter()
        test_preds = predict(
            fit.model,
            bags,
            parts["test"],
            batch_size=tc.eval_batch_size,
            device=device,
            amp=tc.amp,
            standardize=fit.standardize,
        )
        test_seconds = time.perf_counter() - t2
        test_result = evaluate_predictions(bags, test_preds)
    n_eval = fit.n_val_evaluated + len(parts["test"])
    return FoldOutcome(
        best_epoch=fit.best_epoch,
        epochs_run=fit.epochs_run,
        history=fit.history,
        val=fit.val,
        test=test_result,
        test_predictions=test_preds,
        n_params=sum(p.numel() for p in fit.model.parameters()),
        seconds=time.perf_counter() - started,
        train_slides_per_s=fit.epochs_run * len(parts["train"]) / max(fit.train_seconds, 1e-9),
        eval_slides_per_s=n_eval / max(fit.eval_seconds + test_seconds, 1e-9),
        peak_memory_mb=memory.peak_mb,
        steps=fit.steps,
        state_dict=fit.state_dict,
        standardize=fit.standardize,
    )
