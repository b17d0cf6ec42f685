"""The three training paths `benchmark perf` times, each for the config's epochs from the same seeded model.

* `batched_path`: `benchmark.run.train.fit_fold` itself — length-bucketed padded batches, `compose_loss`, bf16
  autocast on CUDA, validation through `benchmark.run.inference.predict` and checkpoint selection every
  epoch: exactly what ``benchmark run`` does per fold.
* `reference_path`: CLAM's training loop — one bag per step, the bag read with
  ``torch.load(pt_files/<slide>.pt, weights_only=True)`` at every step of every epoch, forward, the same `compose_loss` total
  (CLAM's instance loss, HMIL's auxiliary terms), backward, step; validation bag by bag re-reading the files.
* `floor_path`: the batched path minus its data work — the same batches (same `training_batches` order, same
  `pad_batch` draws) built and moved to the device before the epoch's clock starts, so the timed part is only
  forward, loss, backward and step, then forward over pre-built validation batches and the same metrics.

Notes:
    The reference loop follows CLAM's ``train_loop_clam``/``validate_clam`` but reads in the main process
    (CLAM's loader uses 4 workers on CUDA, none on CPU), draws a plain shuffle instead of its class-weighted
    sampler (same cost) and trains in fp32 as CLAM does (no autocast).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.core.config import RunConfig
from benchmark.core.contract import MILModel, Targets
from benchmark.data.bags import BagCollection, PaddedBatch, instance_statistics, pad_batch
from benchmark.run.inference import Predictions, autocast, eval_batches, evaluate_predictions
from benchmark.run.loss_weighting import compose_loss
from benchmark.run.setup import resolve_device, seed_everything, training_batches
from benchmark.run.train import build_model_and_optimizer, fit_fold

__all__ = ["PathTiming", "batched_path", "floor_path", "reference_path", "write_pt_files"]


@dataclass
class PathTiming:
    """What one path did over its epochs.

    Attributes:
        train_seconds, eval_seconds: time in training steps and in validation, summed over the epochs.
        epochs, steps: epochs run and optimiser steps taken.
        loss: the last epoch's bag-weighted mean of the total (``loss``) and of every configured term.
    """

    train_seconds: float
    eval_seconds: float
    epochs: int
    steps: int
    loss: dict[str, float] = field(default_factory=dict)


def write_pt_files(bags: BagCollection, root: Path) -> list[Path]:
    """CLAM's layout ``<root>/pt_files/<slide>.pt``, one (N_i, D) float32 tensor per slide, as feature
    extractors leave them; returns the paths in collection order."""
    out = root / "pt_files"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, sid in enumerate(bags.slide_ids):
        path = out / f"{sid}.pt"
        torch.save(torch.from_numpy(np.asarray(bags.bag(i), dtype=np.float32)), path)
        paths.append(path)
    return paths


def batched_path(
    config: RunConfig, bags: BagCollection, train_idx: np.ndarray, val_idx: np.ndarray
) -> PathTiming:
    """``fit_fold`` as ``benchmark run`` calls it, with its own train/validation clocks."""
    fit = fit_fold(config, bags, train_idx, val_idx, seed=config.seed)
    loss = {k.removeprefix("train."): v for k, v in fit.history[-1].items() if k.startswith("train.")}
    return PathTiming(fit.train_seconds, fit.eval_seconds, fit.epochs_run, fit.steps, loss)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":  # kernels run asynchronously: stop the clock only once they are done
        torch.cuda.synchronize(device)


def _step(
    model: MILModel,
    optimizer: torch.optim.Optimizer,
    config: RunConfig,
    batch: PaddedBatch,
    epoch: int,
    amp: bool,
) -> tuple[float, dict[str, float]]:
    """One optimiser step on a batch (x: (B, N, D), mask: (B, N)), as the trainer takes it; (loss, terms)."""
    tc = config.train
    targets = Targets(fine=batch.fine, coarse=batch.coarse, progress=epoch / tc.epochs)
    with autocast(batch.x.device, amp):
        out = model(batch.x, batch.mask, targets)
    loss, terms = compose_loss(
        out, batch.fine, batch.coarse, config.loss, epoch=epoch, total_epochs=tc.epochs
    )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach()), terms


def _add(sums: dict[str, float], loss: float, terms: dict[str, float], n: int) -> None:
    for k, v in {"loss": loss, **terms}.items():
        sums[k] = sums.get(k, 0.0) + v * n


def _evaluate(
    bags: BagCollection,
    index: np.ndarray,
    order: Sequence[int],
    logits: list[torch.Tensor],
    coarse: list[torch.Tensor],
) -> None:
    """Probabilities and fine CE of the validation slides (rows in ``order``) and their metrics, as the
    trainer computes them every epoch; the values are discarded (only their cost matters here)."""
    fine_logits = torch.cat(logits).float()
    labels = torch.from_numpy(bags.fine_labels[np.asarray(order)]).to(fine_logits.device)
    ce = float(F.cross_entropy(fine_logits, labels))
    rows = np.argsort(np.asarray(order))[np.argsort(np.argsort(index))]  # back to the order of ``index``
    probs = torch.softmax(fine_logits, -1).cpu().numpy()[rows]
    coarse_probs = torch.softmax(torch.cat(coarse).float(), -1).cpu().numpy()[rows] if coarse else None
    evaluate_predictions(bags, Predictions(np.asarray(index), probs, coarse_probs, ce))


Scale = tuple[np.ndarray, np.ndarray] | None  # (mean, std), each (D,), with train.standardize
Start = tuple[torch.device, MILModel, torch.optim.Optimizer, np.random.Generator, Scale]


def _start(config: RunConfig, bags: BagCollection, train_idx: np.ndarray) -> Start:
    """The trainer's start of a fold: seeded globals, a fresh model and optimiser, the fold's generator."""
    device = resolve_device(config.train.device)
    seed_everything(config.seed)
    model, optimizer = build_model_and_optimizer(config, bags, device)
    scale = instance_statistics(bags, train_idx) if config.train.standardize else None
    return device, model, optimizer, np.random.default_rng(config.seed), scale


def _read(path: Path, scale: Scale, device: torch.device) -> torch.Tensor:
    """A bag from its file, (1, N, D) on ``device``; standardised with the training part's statistics
    when the config asks for it (CLAM itself never does)."""
    x = torch.load(path, weights_only=True)
    if scale is not None:
        x = (x - torch.from_numpy(scale[0]).float()) / torch.from_numpy(scale[1]).float()
    return x.unsqueeze(0).to(device)


def reference_path(
    config: RunConfig,
    bags: BagCollection,
    paths: Sequence[Path],
    train_idx: np.ndarray,
    val_idx: np.ndarray,
) -> PathTiming:
    """CLAM's loop: batch 1, every bag re-read from ``paths[i]`` at every step and every validation."""
    tc = config.train
    device, model, optimizer, rng, scale = _start(config, bags, train_idx)
    fine_all = torch.from_numpy(bags.fine_labels)
    coarse_all = torch.from_numpy(bags.coarse_labels)
    train_s = eval_s = 0.0
    steps = 0
    sums: dict[str, float] = {}
    for epoch in range(tc.epochs):
        t0 = time.perf_counter()
        model.train()
        sums = {}
        for i in rng.permutation(train_idx):
            x = _read(paths[i], scale, device)  # re-read every step, as CLAM's dataset does
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=device)
            y_fine, y_coarse = fine_all[i : i + 1].to(device), coarse_all[i : i + 1].to(device)
            batch = PaddedBatch(x, mask, y_fine, y_coarse, torch.tensor([i]))
            loss, terms = _step(model, optimizer, config, batch, epoch, amp=False)  # CLAM trains in fp32
            _add(sums, loss, terms, 1)
            steps += 1
        _sync(device)
        t1 = time.perf_counter()
        model.eval()
        logits, coarse = [], []
        with torch.no_grad():
            for i in val_idx:
                x = _read(paths[i], scale, device)
                out = model(x, torch.ones(x.shape[:2], dtype=torch.bool, device=device))
                logits.append(out.logits)
                if out.coarse_logits is not None:
                    coarse.append(out.coarse_logits)
        _evaluate(bags, val_idx, val_idx, logits, coarse)
        train_s, eval_s = train_s + t1 - t0, eval_s + time.perf_counter() - t1
    loss = {k: v / len(train_idx) for k, v in sums.items()}
    return PathTiming(train_s, eval_s, tc.epochs, steps, loss)


def floor_path(
    config: RunConfig, bags: BagCollection, train_idx: np.ndarray, val_idx: np.ndarray
) -> PathTiming:
    """The batched path's compute alone: its batches (same order, same instance draws) pre-built on the
    device before each epoch's clock starts; validation over pre-built length-sorted batches."""
    tc = config.train
    device, model, optimizer, rng, scale = _start(config, bags, train_idx)
    val_chunks = eval_batches(bags, np.asarray(val_idx, dtype=np.int64), tc.eval_batch_size)
    val_batches = [pad_batch(bags, c, standardize=scale).to(device) for c in val_chunks]
    order = np.concatenate(val_chunks)
    train_s = eval_s = 0.0
    steps = 0
    sums: dict[str, float] = {}
    for epoch in range(tc.epochs):
        # The same generator calls in the same order as fit_fold, so these are the trainer's batches.
        chunks = training_batches(
            bags.lengths,
            train_idx,
            tc.batch_size,
            tc.bucket_pool,
            rng,
            max_batch_instances=tc.max_batch_instances,
            max_instances=tc.max_instances,
        )
        batches = [
            pad_batch(bags, c, max_instances=tc.max_instances, rng=rng, standardize=scale).to(device)
            for c in chunks
        ]
        _sync(device)
        t0 = time.perf_counter()
        model.train()
        sums = {}
        for batch in batches:
            loss, terms = _step(model, optimizer, config, batch, epoch, amp=tc.amp)
            _add(sums, loss, terms, len(batch.fine))
            steps += 1
        _sync(device)
        t1 = time.perf_counter()
        model.eval()
        logits, coarse = [], []
        with torch.no_grad():
            for batch in val_batches:
                with autocast(device, tc.amp):
                    out = model(batch.x, batch.mask)
                logits.append(out.logits)
                if out.coarse_logits is not None:
                    coarse.append(out.coarse_logits)
        _evaluate(bags, val_idx, order, logits, coarse)
        train_s, eval_s = train_s + t1 - t0, eval_s + time.perf_counter() - t1
        del batches  # one epoch of padded batches in memory at a time
    loss = {k: v / len(train_idx) for k, v in sums.items()}
    return PathTiming(train_s, eval_s, tc.epochs, steps, loss)
