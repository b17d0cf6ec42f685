"""How a fold's training is set up: its seed, the global RNG seeding, the device and the epoch's batch order."""

from __future__ import annotations

import random

import numpy as np
import torch

from benchmark.core.errors import ConfigError

__all__ = ["fold_seed", "resolve_device", "seed_everything", "training_batches"]


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
    lengths: np.ndarray,
    index: np.ndarray,
    batch_size: int,
    pool: int,
    rng: np.random.Generator,
    *,
    max_batch_instances: int | None = None,
    max_instances: int | None = None,
) -> list[np.ndarray]:
    """One epoch of training batches: shuffled, optionally length-bucketed within pools of batches.

    With ``pool`` ≥ 2 the shuffled slides are cut into pools of ``pool · batch_size``, each pool is sorted
    by bag length and cut into batches, and the batch order is shuffled, so a batch pads to a length close
    to its own bags' while every epoch still sees a fresh random grouping.

    With ``max_batch_instances`` a batch whose padded size (bags × longest bag, after the per-bag
    ``max_instances`` cap) exceeds it is cut into consecutive smaller batches (a single bag always forms a
    batch), which bounds training memory on realistic bags at the price of more optimiser steps. Without
    it the random stream and the batches are exactly those of earlier versions.
    """
    order = rng.permutation(index)
    if pool < 2:
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    else:
        batches = []
        span = pool * batch_size
        for start in range(0, len(order), span):
            chunk = order[start : start + span]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        batches = [batches[i] for i in rng.permutation(len(batches))]
    if max_batch_instances is None:
        return batches
    sizes = lengths if max_instances is None else np.minimum(lengths, max_instances)
    return [part for batch in batches for part in _cap(batch, sizes, max_batch_instances)]


def _cap(batch: np.ndarray, sizes: np.ndarray, limit: int) -> list[np.ndarray]:
    """``batch`` cut in order into runs whose padded size (count × longest) stays ≤ ``limit``."""
    parts, start, longest = [], 0, 0
    for j in range(len(batch)):
        longest_with = max(longest, int(sizes[batch[j]]))
        if j > start and (j - start + 1) * longest_with > limit:
            parts.append(batch[start:j])
            start, longest_with = j, int(sizes[batch[j]])
        longest = longest_with
    parts.append(batch[start:])
    return parts
