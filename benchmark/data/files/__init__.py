"""File-backed datasets (``panda``, ``bracs``, ``csv``): your label files and feature files on disk.

`prepare` resolves a dataset's labels (`.labels`), feature store (`.stores`) and their join (`.sources`)
without reading features; `build_collection` reads the features once, into RAM or a packed memory-mapped
cache (`.pack`, built from `.packfile`); `benchmark.data.files.datasets` registers the loaders.
"""

from benchmark.data.files.pack import build_collection, pack_dataset
from benchmark.data.files.prepare import BRACS_HIERARCHY, PANDA_HIERARCHY, data_dir, is_file_dataset, prepare
from benchmark.data.files.sources import Sources
from benchmark.data.files.stores import FeatureStore, detect_store, read_features

__all__ = [
    "BRACS_HIERARCHY",
    "PANDA_HIERARCHY",
    "FeatureStore",
    "Sources",
    "build_collection",
    "data_dir",
    "detect_store",
    "is_file_dataset",
    "pack_dataset",
    "prepare",
    "read_features",
]
