"""The dataset registry: ``@register_dataset("panda-sim", ...)`` on a loader ``load(cfg) -> BagCollection``."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from benchmark.core.config import DataConfig
from benchmark.core.hierarchy import Hierarchy
from benchmark.core.registry import Registry
from benchmark.data.bags import BagCollection

__all__ = ["DATASETS", "DatasetInfo", "load_dataset", "register_dataset"]

Loader = Callable[[DataConfig], BagCollection]


@dataclass(frozen=True)
class DatasetInfo:
    """What ``benchmark datasets`` shows for a registered dataset.

    Attributes:
        description: one line.
        hierarchy: the fixed hierarchy, or None when it comes from the user's files (``csv``).
        size: a human-readable size at the default scale ("600 slides, D=1024" / "user data").
        needs_data_dir: whether the loader reads user files.
        layout: the expected on-disk layout, shown when data are missing.
        train_defaults: the dataset's recommended training protocol (`TrainConfig` fields), applied by
            ``benchmark run``/``tune`` over the models' own defaults unless the user overrides a field.
        protocol: where that protocol comes from (one line, logged when it is applied).
        cv_defaults: the recommended split protocol (``n_folds``), used when the user gives no ``--folds``.
    """

    description: str
    hierarchy: Hierarchy | None
    size: str
    needs_data_dir: bool
    layout: str = ""
    train_defaults: Mapping[str, Any] = field(default_factory=dict)
    protocol: str = ""
    cv_defaults: Mapping[str, Any] = field(default_factory=dict)


DATASETS: Registry[Loader] = Registry("dataset", "--dataset")

# Modules whose import registers datasets. Listed here (not discovered) so the registry is explicit.
_DATASET_MODULES = (
    "benchmark.data.sim.datasets",
    "benchmark.data.files.real",
    "benchmark.data.digits.datasets",
    "benchmark.data.classical",
)


def register_dataset(name: str, info: DatasetInfo) -> Callable[[Loader], Loader]:
    return DATASETS.register(name, info=info)


def ensure_registered() -> None:
    for module in _DATASET_MODULES:
        importlib.import_module(module)


def load_dataset(cfg: DataConfig) -> BagCollection:
    """Load the dataset named by ``cfg.name`` (unknown names list the valid ones)."""
    ensure_registered()
    return DATASETS.get(cfg.name)(cfg)


def dataset_info(name: str) -> DatasetInfo:
    ensure_registered()
    return DATASETS.entry(name).meta["info"]
