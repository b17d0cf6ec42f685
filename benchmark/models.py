"""The model registry: ``@register_model("abmil", config=ABMILConfig)`` on a `MILModel` subclass.

Each model declares a frozen config dataclass (its hyperparameters, keyword-only), its loss terms
(weights and schedules applied by the harness in `benchmark.run.loss_weighting`), its training recipe where it
differs from the harness defaults (e.g. HMIL's Adam, lr 1e-4) and its reference budget (HMIL's 64 bags per
step), used only with ``train.preset=reference``.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any

from benchmark.core.config import BUDGET_FIELDS, LossTerm
from benchmark.core.contract import MILModel
from benchmark.core.errors import ConfigError
from benchmark.core.hierarchy import Hierarchy
from benchmark.core.overrides import apply_overrides
from benchmark.core.registry import Registry

__all__ = [
    "MODELS",
    "default_loss_terms",
    "model_modules",
    "build_model",
    "ensure_registered",
    "model_defaults",
    "register_model",
    "resolve_model_params",
]

MODELS: Registry[type[MILModel]] = Registry("model", "--models")

# Every public module of these packages is a model file and must register at least one model (a test
# checks it); private helpers (``_nystrom.py``) are skipped. HMIL registers from ``hmil.model``.
MODEL_PACKAGES = ("baselines",)
EXTRA_MODEL_MODULES: tuple[str, ...] = ("hmil.model",)


FINE_CE_ONLY = (LossTerm("fine_ce"),)


def model_modules() -> list[str]:
    """Names of the modules whose import registers models."""
    names = []
    for package in MODEL_PACKAGES:
        pkg = importlib.import_module(package)
        names += [
            f"{package}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")
        ]
    return sorted(names) + list(EXTRA_MODEL_MODULES)


def register_model(
    name: str,
    *,
    config: type,
    description: str,
    loss: tuple[LossTerm, ...] | Callable[[Any], tuple[LossTerm, ...]] = FINE_CE_ONLY,
    train_defaults: Mapping[str, Any] | None = None,
    reference_train: Mapping[str, Any] | None = None,
) -> Callable[[type[MILModel]], type[MILModel]]:
    """Register a model class.

    Args:
        name: command-line name (lowercase, hyphenated).
        config: frozen dataclass of hyperparameters; the model is built as ``cls(cfg, in_dim=, hierarchy=)``.
        description: one line for ``benchmark models``.
        loss: default loss terms, or a function of the model config returning them (so switching a
            component off in the config drops its term); ``fine_ce`` and ``coarse_ce`` are computed by
            the harness, any other name must appear in the model's ``aux_losses``.
        train_defaults: `TrainConfig` fields of this model's recipe (lr, weight decay, optimiser), applied by
            default and recorded in the run. Budget fields (`BUDGET_FIELDS`) are not allowed here: every
            method of a run gets the same budget.
        reference_train: budget fields of the model's reference implementation (e.g. batch_size=1), applied
            only with ``train.preset=reference``.
    """
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"model {name}: config must be a dataclass")
    budget = sorted(set(train_defaults or {}) & set(BUDGET_FIELDS))
    if budget:
        raise TypeError(
            f"model {name}: train_defaults may not set budget fields {budget}; use reference_train"
        )
    if set(reference_train or {}) - set(BUDGET_FIELDS):
        raise TypeError(f"model {name}: reference_train may only set {BUDGET_FIELDS}")
    return MODELS.register(
        name,
        config=config,
        description=description,
        loss=loss if callable(loss) else tuple(loss),
        train_defaults=dict(train_defaults or {}),
        reference_train=dict(reference_train or {}),
    )


def ensure_registered() -> None:
    for module in model_modules():
        importlib.import_module(module)


def model_defaults(name: str) -> dict[str, Any]:
    ensure_registered()
    return dict(MODELS.entry(name).meta)


def resolve_model_params(name: str, overrides: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Default hyperparameters of ``name`` with string overrides cast to the field types."""
    ensure_registered()
    cfg_cls = MODELS.entry(name).meta["config"]
    cfg = apply_overrides(cfg_cls(), overrides or {}, section="model")
    return dataclasses.asdict(cfg)


def default_loss_terms(name: str, params: Mapping[str, Any]) -> tuple[LossTerm, ...]:
    """The model's loss terms for these hyperparameters."""
    entry = MODELS.entry(name)
    loss = entry.meta["loss"]
    if callable(loss):
        cfg_cls = entry.meta["config"]
        return tuple(
            loss(cfg_cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in params.items()}))
        )
    return tuple(loss)


def build_model(name: str, params: Mapping[str, Any], *, in_dim: int, hierarchy: Hierarchy) -> MILModel:
    """Instantiate a fresh model from its registry name and resolved hyperparameters."""
    ensure_registered()
    entry = MODELS.entry(name)
    cfg_cls = entry.meta["config"]
    known = {f.name for f in dataclasses.fields(cfg_cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(f"model {name}: unknown hyperparameter(s) {unknown}; valid: {sorted(known)}.")
    cfg = cfg_cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in params.items()})
    return entry.obj(cfg, in_dim=in_dim, hierarchy=hierarchy)
