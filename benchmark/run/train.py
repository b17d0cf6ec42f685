"""Model-agnostic training of one fold: padded batches, AdamW, early stopping, validation-only selection.

The trainer knows no model: it calls the contract ``forward(x, mask, targets)``, composes the loss
with `benchmark.run.loss_weighting.compose_loss` and selects the checkpoint on a validation metric (ties broken
by the lower validation fine cross-entropy). `fit_fold` trains and selects without any test path (the
tuning objective uses it); `train_fold` adds the single test evaluation after selection.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from benchmark.core.config import RunConfig
from benchmark.core.contract import MILModel, Targets
from benchmark.core.errors import ConfigError, TrainingError
from benchmark.data.bags import BagCollection, instance_statistics, pad_batch
from benchmark.metrics.evaluate import EvaluationResult
from benchmark.run.encoders import build_pipeline
from benchmark.run.inference import Predictions, autocast, evaluate_predictions, predict
from benchmark.run.loss_weighting import compose_loss
from benchmark.run.memory import PeakMemory

__all__ = [
    "FitResult",
    "FoldOutcome",
    "Predictions",
    "fit_fold",
    "fold_seed",
    "predict",
    "resolve_device",
    "seed_everything",
    "train_fold",
    "training_batches",
]

log = logging.getLogger(__name__)


def fold_seed(run_seed: int, fold: int) -> int:
    """Fold seed derived from the run seed with `numpy.random.SeedSequence.spawn` (stable, independent)."""
    child = np.random.SeedSequence(run_seed).spawn(fold + 1)[fold]
    return int(child.generate_state(1, dtype=np.uint32)[0])


def seed_everything(seed: int) -> None:
    """Seed the global RNGs once per fold, right before building a fresh model (harness only)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r} but CUDA is not available here; use --device cpu or auto.")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device={name!r} is not a device; use auto, cpu or cuda[:i].") from None


def training_batches(
    lengths: np.ndarray, index: np.ndarray, batch_size: int, pool: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """One epoch of training batches: shuffled, optionally length-bucketed within pools of batches.

    With ``pool`` ≥ 2 the shuffled slides are cut into pools of ``pool · batch_size``, each pool is sorted
    by bag length and cut into batches, and the batch order is shuffled, so a batch pads to a length close
    to its own bags' while every epoch still sees a fresh random grouping.
    """
    order = rng.permutation(index)
    if pool < 2:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    batches = []
    span = pool * batch_size
    for start in range(0, len(order), span):
        chunk = order[start : start + span]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _selection_score(result: EvaluationResult, selection: str) -> float:
    flat = result.flat("val")
    if selection == "fine+coarse.accuracy":
        value = flat["val.fine.accuracy"] + flat["val.coarse.accuracy"]
    else:
        value = flat.get(f"val.{selection}", float("nan"))
    return -math.inf if value is None or math.isnan(value) else float(value)


@dataclass
class FitResult:
    """A trained model selected on validation: what `fit_fold` returns (no test part involved).

    Attributes:
        model: the model with the selected (best validation) weights loaded, in eval mode.
        best_epoch, epochs_run, history: selection epoch, epochs trained, per-epoch records.
        val: validation metrics of the selected checkpoint.
        state_dict: the selected weights.
        standardize: training-part feature statistics (``train.standardize``), or None.
        train_seconds, eval_seconds: time spent training and evaluating validation.
        n_val_evaluated: validation slides evaluated in total (epochs × val size).
        steps: optimiser steps taken (the budget actually spent; early stopping ends it sooner).
    """

    model: MILModel
    best_epoch: int
    epochs_run: int
    history: list[dict[str, float]]
    val: EvaluationResult
    state_dict: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)
    standardize: tuple[np.ndarray, np.ndarray] | None = None
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    n_val_evaluated: int = 0
    steps: int = 0


@dataclass
class FoldOutcome:
    """Everything a fold produced; the tracker logs it."""

    best_epoch: int
    epochs_run: int
    history: list[dict[str, float]]
    val: EvaluationResult
    test: EvaluationResult
    test_predictions: Predictions
    n_params: int
    seconds: float
    train_slides_per_s: float
    eval_slides_per_s: float
    peak_memory_mb: float
    steps: int = 0
    state_dict: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)
    standardize: tuple[np.ndarray, np.ndarray] | None = None


EpochCallback = Callable[[int, dict[str, float]], None]


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
    optimizer = optimizer_cls(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    rng = np.random.default_rng(seed)
    train_idx = np.asarray(train_index, dtype=np.int64)
    val_idx = np.asarray(val_index, dtype=np.int64)
    scale = instance_statistics(bags, train_idx) if tc.standardize else None  # training part only
    best: tuple[float, float] = (-math.inf, math.inf)
    best_state, best_epoch, best_val = None, -1, None
    history: list[dict[str, float]] = []
    train_seconds = eval_seconds = 0.0
    stale = steps = 0
    for epoch in range(tc.epochs):
        t0 = time.perf_counter()
        model.train()
        sums: dict[str, float] = {}
        for chunk in training_batches(bags.lengths, train_idx, tc.batch_size, tc.bucket_pool, rng):
            batch = pad_batch(bags, chunk, max_instances=tc.max_instances, rng=rng, standardize=scale).to(
                device
            )
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
        train_seconds += time.perf_counter() - t0
        t1 = time.perf_counter()
        val_preds = predict(
            model, bags, val_idx, batch_size=tc.eval_batch_size, device=device, amp=tc.amp, standardize=scale
        )
        if not np.isfinite(val_preds.fine_probs).all():
            raise _diverged(
                config,
                f"validation predictions are NaN/inf at epoch {epoch}",
                history + [{f"train.{k}": v / len(train_idx) for k, v in sums.items()}],
            )
        val_result = evaluate_predictions(bags, val_preds)
        eval_seconds += time.perf_counter() - t1
        record = {f"train.{k}": v / len(train_idx) for k, v in sums.items()}
        record.update({k: v for k, v in val_result.flat("val").items() if "." not in k.split(".", 2)[-1]})
        record["val.fine_ce"] = val_preds.fine_ce
        history.append(record)
        score = (_selection_score(val_result, tc.selection), val_preds.fine_ce)
        if score[0] > best[0] or (score[0] == best[0] and score[1] < best[1]):
            best, best_epoch, best_val, stale = score, epoch, val_result, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
        if on_epoch is not None:
            on_epoch(epoch, record)
        if tc.patience and stale >= tc.patience and epoch + 1 >= tc.min_epochs:
            log.info("early stop at epoch %d (best %d)", epoch, best_epoch)
            break
    if best_state is None:  # no epoch had a finite selection score or validation loss
        raise _diverged(
            config,
            f"no epoch gave a finite validation {tc.selection} or loss in {len(history)} epoch(s)",
            history,
        )
    model.load_state_dict(best_state)
    model.eval()
    return FitResult(
        model=model,
        best_epoch=best_epoch,
        epochs_run=len(history),
        history=history,
        val=best_val,
        state_dict=best_state,
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
