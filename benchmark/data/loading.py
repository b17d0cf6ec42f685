"""The dataset registry: ``@register_dataset("panda-sim", info=...)`` on a loader ``load(cfg) -> BagCollection``,
stored as a typed `DatasetSpec`."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from benchmark.core.config import DataConfig
from benchmark.core.hierarchy import Hierarchy
from benchmark.core.registry import Registry
from benchmark.data.bags import BagCollection
from benchmark.data.memory import cast_features, ram_budget

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "DatasetSpec",
    "dataset_info",
    "dataset_modules",
    "dataset_spec",
    "load_dataset",
    "register_dataset",
]

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


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its name, its loader ``load(cfg) -> BagCollection`` and what it is."""

    name: str
    load: Loader
    info: DatasetInfo


DATASETS: Registry[DatasetSpec] = Registry("dataset", "--dataset")

# Datasets are discovered like models: every module named ``datasets`` in a subpackage of `benchmark.data`
# registers its datasets on import (a test checks that each registers at least one, and that nothing else
# calls `register_dataset`).
DATASET_PACKAGE = "benchmark.data"


def dataset_modules() -> list[str]:
    """Names of the modules whose import registers datasets."""
    package = importlib.import_module(DATASET_PACKAGE)
    return sorted(
        m.name
        for m in pkgutil.walk_packages(package.__path__, prefix=f"{DATASET_PACKAGE}.")
        if m.name.rsplit(".", 1)[-1] == "datasets"
    )


def register_dataset(name: str, info: DatasetInfo) -> Callable[[Loader], Loader]:
    """Decorator registering a loader: ``@register_dataset("panda-sim", info=DatasetInfo(...))``."""

    def decorator(load: Loader) -> Loader:
        DATASETS.add(name, DatasetSpec(name, load, info))
        return load

    return decorator


def ensure_registered() -> None:
    for module in dataset_modules():
        importlib.import_module(module)


def dataset_spec(name: str) -> DatasetSpec:
    """The registered spec of ``name`` (unknown names list the valid ones and the closest match)."""
    ensure_registered()
    return DATASETS.get(name)


def load_dataset(cfg: DataConfig) -> BagCollection:
    """Load the dataset named by ``cfg.name`` (unknown names list the valid ones), its features held in the
    precision ``cfg.feature_dtype`` asks for.

    File-backed loaders read straight into that precision; for the others (simulated, digit, classical
    sets) the loaded features are cast here, which is a no-op with the default ``"source"``.
    """
    bags = dataset_spec(cfg.name).load(cfg)
    return cast_features(bags, cfg.feature_dtype, ram_budget(cfg.preload_max_gb))


def dataset_info(name: str) -> DatasetInfo:
    return dataset_spec(name).info
