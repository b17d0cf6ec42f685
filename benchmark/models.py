"""Models: the typed `ModelSpec` registry and the one `build_model` factory.

A model file registers its class with ``register_model("abmil", config=ABMILConfig, ...)``: a frozen config
dataclass (its hyperparameters, keyword-only), its loss terms (weights and schedules applied by the harness in
`benchmark.run.loss_weighting`), its training recipe where it differs from the harness defaults (e.g. HMIL's
Adam, lr 1e-4) and its reference budget (HMIL's 64 bags per step), used only with ``train.preset=reference``.
Every public module of `baselines` is a model file (discovered, not listed); HMIL registers from `hmil.model`.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from benchmark.core.config import BUDGET_FIELDS, LossTerm
from benchmark.core.contract import MILModel
from benchmark.core.errors import ConfigError
from benchmark.core.hierarchy import Hierarchy
from benchmark.core.overrides import apply_overrides
from benchmark.core.registry import Registry

__all__ = [
    "MODELS",
    "ModelSpec",
    "build_model",
    "default_loss_terms",
    "ensure_registered",
    "model_modules",
    "model_spec",
    "register_model",
    "resolve_model_params",
]

# Every public module of these packages is a model file and must register at least one model (a test
# checks it); private helpers (``_nystrom.py``) are skipped. HMIL registers from ``hmil.model``.
MODEL_PACKAGES = ("baselines",)
EXTRA_MODEL_MODULES: tuple[str, ...] = ("hmil.model",)

FINE_CE_ONLY = (LossTerm("fine_ce"),)
LossSpec = tuple[LossTerm, ...] | Callable[[Any], tuple[LossTerm, ...]]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model.

    Attributes:
        name: command-line name (lowercase, hyphenated).
        cls: the `MILModel` subclass, built as ``cls(cfg, in_dim=, hierarchy=)``.
        config: frozen dataclass of hyperparameters.
        description: one line for ``benchmark models``.
        loss: default loss terms, or a function of the model config returning them (so switching a
            component off in the config drops its term); ``fine_ce`` and ``coarse_ce`` are computed by the
            harness, any other name must appear in the model's ``aux_losses``.
        train_defaults: `TrainConfig` fields of the model's recipe (lr, weight decay, optimiser).
        reference_train: budget fields of the model's reference implementation (only with
            ``train.preset=reference``).
    """

    name: str
    cls: type[MILModel]
    config: type
    description: str
    loss: LossSpec = FINE_CE_ONLY
    train_defaults: Mapping[str, Any] = field(default_factory=dict)
    reference_train: Mapping[str, Any] = field(default_factory=dict)

    def make_config(self, params: Mapping[str, Any] | None = None) -> Any:
        """The config dataclass from resolved hyperparameters (JSON lists become the fields' tuples)."""
        params = dict(params or {})
        known = {f.name for f in dataclasses.fields(self.config)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(
                f"model {self.name}: unknown hyperparameter(s) {unknown}; valid: {sorted(known)}."
            )
        return self.config(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in params.items()})

    def loss_terms(self, params: Mapping[str, Any]) -> tuple[LossTerm, ...]:
        """The model's loss terms for these hyperparameters."""
        return tuple(self.loss(self.make_config(params))) if callable(self.loss) else tuple(self.loss)


MODELS: Registry[ModelSpec] = Registry("model", "--models")


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
    loss: LossSpec = FINE_CE_ONLY,
    train_defaults: Mapping[str, Any] | None = None,
    reference_train: Mapping[str, Any] | None = None,
) -> Callable[[type[MILModel]], type[MILModel]]:
    """Class decorator registering a `ModelSpec` (fields as there).

    Budget fields (`BUDGET_FIELDS`) are not allowed in ``train_defaults``: every method of a run gets the same
    budget; a model's reference budget goes in ``reference_train``.
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

    def decorator(cls: type[MILModel]) -> type[MILModel]:
        spec = ModelSpec(
            name=name,
            cls=cls,
            config=config,
            description=description,
            loss=loss if callable(loss) else tuple(loss),
            train_defaults=dict(train_defaults or {}),
            reference_train=dict(reference_train or {}),
        )
        MODELS.add(name, spec)
        return cls

    return decorator


def ensure_registered() -> None:
    for module in model_modules():
        importlib.import_module(module)


def model_spec(name: str) -> ModelSpec:
    """The registered spec of ``name`` (unknown names list the valid ones and the closest match)."""
    ensure_registered()
    return MODELS.get(name)


def resolve_model_params(name: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Default hyperparameters of ``name`` with overrides applied (strings are cast to the field types)."""
    cfg = apply_overrides(model_spec(name).config(), overrides or {}, section="model")
    return dataclasses.asdict(cfg)


def default_loss_terms(name: str, params: Mapping[str, Any]) -> tuple[LossTerm, ...]:
    """The model's loss terms for these hyperparameters."""
    return model_spec(name).loss_terms(params)


def build_model(name: str, params: Mapping[str, Any], *, in_dim: int, hierarchy: Hierarchy) -> MILModel:
    """Instantiate a fresh model from its registry name and resolved hyperparameters."""
    spec = model_spec(name)
    return spec.cls(spec.make_config(params), in_dim=in_dim, hierarchy=hierarchy)
