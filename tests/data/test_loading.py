"""The dataset registry: typed specs, discovery of every ``datasets`` module, names that suggest the fix."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import benchmark.data
from benchmark.core.errors import UnknownNameError
from benchmark.data.loading import (
    DATASETS,
    DatasetInfo,
    DatasetSpec,
    dataset_modules,
    dataset_spec,
    ensure_registered,
)

ensure_registered()


def test_every_datasets_module_is_discovered_and_registers_something():
    modules = dataset_modules()
    assert {
        "benchmark.data.sim.datasets",
        "benchmark.data.files.datasets",
        "benchmark.data.digits.datasets",
        "benchmark.data.classical.datasets",
    } <= set(modules)
    owners = {spec.load.__module__ for spec in DATASETS}
    assert set(modules) == owners  # every discovered module registers at least one dataset, nothing else does


def test_register_dataset_is_called_only_in_datasets_modules():
    root = Path(benchmark.data.__file__).parent
    callers = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "register_dataset":
                callers.append(path.relative_to(root).as_posix())
    assert callers and all(c.endswith("datasets.py") for c in callers), sorted(set(callers))


def test_specs_are_typed():
    for spec in DATASETS:
        assert isinstance(spec, DatasetSpec) and isinstance(spec.info, DatasetInfo) and callable(spec.load)
    assert dataset_spec("musk1").info.cv_defaults == {"n_folds": 10}


def test_unknown_names_list_the_valid_ones_and_the_closest():
    with pytest.raises(
        UnknownNameError,
        match=r"unknown dataset 'pand-sim' for --dataset; valid names: .*Did you mean 'panda-sim'\?",
    ):
        dataset_spec("pand-sim")


def test_names_are_case_insensitive_and_resolve_to_the_registered_spelling():
    assert dataset_spec("PANDA-SIM").name == "panda-sim"
    models = importlib.import_module("benchmark.models")
    assert models.model_spec("ABMIL").name == "abmil"
    with pytest.raises(
        UnknownNameError, match=r"unknown model 'ABMILL' for --models.*Did you mean 'abmil'\?"
    ):
        models.model_spec("ABMILL")
