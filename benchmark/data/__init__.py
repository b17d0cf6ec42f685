"""Datasets: a registry of loaders that return `BagCollection`s, feature stores, caches and checks."""

from benchmark.data.bags import BagCollection, PaddedBatch, pad_batch
from benchmark.data.loading import DATASETS, DatasetInfo, load_dataset, register_dataset

__all__ = [
    "DATASETS",
    "BagCollection",
    "DatasetInfo",
    "PaddedBatch",
    "load_dataset",
    "pad_batch",
    "register_dataset",
]
