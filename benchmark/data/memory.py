"""Feature precision and the RAM budget: in which dtype features are held, and whether they fit in RAM.

``DataConfig.feature_dtype`` picks the in-memory precision: ``"source"`` keeps what the files store (float16
stays float16; every other float becomes float32, the precision the models compute in), ``"fp16"`` /
``"fp32"`` force one. Batches are always cast to float32 by `benchmark.data.bags.pad_batch`.

The RAM budget is the smaller of ``DataConfig.preload_max_gb`` and half of the RAM available right now
(`available_ram`): a feature array above it is memory-mapped from disk instead of preloaded, so a large set
degrades to page-cache reads instead of pushing the machine into swap or the OOM killer.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import psutil

from benchmark.core.errors import ConfigError, DataError
from benchmark.data.bags import BagCollection

__all__ = [
    "RamBudget",
    "available_ram",
    "cast_features",
    "ram_budget",
    "source_dtype",
    "target_dtype",
]

log = logging.getLogger(__name__)
_GIB = 2**30
_FORCED = {"fp16": np.dtype(np.float16), "fp32": np.dtype(np.float32)}
_COPY_BLOCK_BYTES = 64 * 2**20  # cast in blocks: the peak is the result plus one block, not two arrays


def source_dtype(dtype: np.dtype | type) -> np.dtype:
    """The in-memory dtype that keeps a file's precision: float16 stays, any other float becomes float32."""
    return np.dtype(np.float16) if np.dtype(dtype) == np.float16 else np.dtype(np.float32)


def target_dtype(feature_dtype: str, source: np.dtype | type) -> np.dtype:
    """The dtype features are held in for ``DataConfig.feature_dtype`` and the files' ``source`` dtype."""
    if feature_dtype == "source":
        return source_dtype(source)
    if feature_dtype not in _FORCED:
        raise ConfigError(
            f"data.feature_dtype must be one of source, fp16, fp32, got {feature_dtype!r}; "
            "fix --feature-dtype."
        )
    return _FORCED[feature_dtype]


def available_ram() -> int:
    """Bytes of RAM available to new allocations now (``psutil.virtual_memory().available``)."""
    return int(psutil.virtual_memory().available)


@dataclass(frozen=True)
class RamBudget:
    """How many feature bytes may be preloaded, and which rule set the number (for the log line).

    Attributes:
        nbytes: the budget in bytes.
        reason: e.g. ``"data.preload_max_gb=8"`` or ``"half of the available RAM (5.1 GiB)"``.
    """

    nbytes: int
    reason: str

    def explain(self, need: int, dtype: np.dtype, what: str) -> str:
        """One log line: ``need`` bytes of ``dtype`` features exceed the budget, so ``what`` happens."""
        return (
            f"features need {need / _GIB:.2f} GiB as {np.dtype(dtype).name} > {self.nbytes / _GIB:.2f} GiB "
            f"RAM budget ({self.reason}): {what}"
        )


def ram_budget(preload_max_gb: float) -> RamBudget:
    """min(``preload_max_gb`` GiB, half of `available_ram`): half, because training batches, the model and
    the rest of the process need the other half."""
    configured = int(preload_max_gb * _GIB)
    half = available_ram() // 2
    if half < configured:
        return RamBudget(half, f"half of the available RAM ({2 * half / _GIB:.1f} GiB)")
    return RamBudget(configured, f"data.preload_max_gb={preload_max_gb:g}")


def cast_features(bags: BagCollection, feature_dtype: str, budget: RamBudget) -> BagCollection:
    """``bags`` with its features in the precision ``feature_dtype`` asks for (the same object if they are).

    Used for datasets that do not read through the file loader (simulated, digit and classical sets). The
    cast copies block by block into one preallocated array; when the result would not fit ``budget`` the
    features stay as they are (a memory-mapped cache keeps working) and a warning says so.

    Args:
        bags: a collection with numpy features (T, D).
        feature_dtype: ``DataConfig.feature_dtype``.
        budget: `ram_budget` of the run.
    """
    features = bags.features
    dtype = target_dtype(feature_dtype, features.dtype)
    if features.dtype == dtype:
        return bags
    need = int(features.shape[0]) * int(features.shape[1]) * dtype.itemsize
    if need > budget.nbytes:
        log.warning(
            "%s",
            budget.explain(need, dtype, f"keeping {bags.name}'s {features.dtype.name} features as they are"),
        )
        return bags
    out = np.empty(features.shape, dtype=dtype)
    step = max(1, _COPY_BLOCK_BYTES // max(1, features.shape[1] * features.itemsize))
    for start in range(0, len(out), step):
        out[start : start + step] = features[start : start + step]
    if dtype == np.float16 and not np.isfinite(out).all() and np.isfinite(features).all():
        raise DataError(
            f"dataset {bags.name}: features exceed the float16 range (±65504); use --feature-dtype fp32 "
            "or source."
        )
    log.info("holding %s's features as %s (%.2f GiB)", bags.name, dtype.name, need / _GIB)
    return dataclasses.replace(bags, features=out)
