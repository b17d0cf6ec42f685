"""The search-space registry: every registered model name maps to a function ``trial → Overrides``.

A search space suggests values with an Optuna trial and returns them as the same string overrides
``--set`` takes (``train.lr``, ``model.dropout``, ``loss.<term>.weight``), so a trial's configuration
is resolved by exactly the code path of ``benchmark run`` (`benchmark.run.resolve.resolve_run_config`) and
can be replayed verbatim (``benchmark run --params-from``). Optuna parameter names are the dotted
override keys, except derived parameters (CLAM's ``clam.bag_weight`` sets two loss weights).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence

import optuna

from benchmark.core.errors import UnknownNameError
from benchmark.core.overrides import Overrides
from benchmark.core.registry import Registry
from benchmark.models import MODELS, ensure_registered

__all__ = [
    "SPACES",
    "SPACE_MODULES",
    "Overrides",
    "SearchSpace",
    "number_str",
    "register_space",
    "space_for",
    "suggest_model",
    "suggest_optimizer",
]


SearchSpace = Callable[[optuna.trial.BaseTrial], Overrides]

SPACES: Registry[SearchSpace] = Registry("search space", "--model")

#: Modules whose import registers the spaces (one per model family).
SPACE_MODULES = (
    "studies.abmil",
    "studies.pooling",
    "studies.clam",
    "studies.transmil",
    "studies.dsmil",
    "studies.dtfd",
    "studies.hmil",
)


def register_space(*models: str) -> Callable[[SearchSpace], SearchSpace]:
    """Register one search space for one or more model names: ``@register_space("abmil", "abmil-plain")``."""

    def decorator(fn: SearchSpace) -> SearchSpace:
        for name in models:
            SPACES.add(name, fn)
        return fn

    return decorator


def _ensure_spaces() -> None:
    for module in SPACE_MODULES:
        importlib.import_module(module)


def space_for(model: str) -> SearchSpace:
    """The search space of a registered model.

    Raises:
        UnknownNameError: ``model`` is not a registered model (lists the valid ones), or has no space.
    """
    ensure_registered()
    MODELS.get(model)  # unknown model: valid names and the closest match
    _ensure_spaces()
    if model not in SPACES:
        raise UnknownNameError(
            f"model {model!r} has no search space; models with one: {', '.join(SPACES.names())}. "
            "Add a module under studies/ with @register_space."
        )
    return SPACES.get(model)


def number_str(value: float | int) -> str:
    """Exact string form of a suggested number (``repr`` round-trips floats bit for bit)."""
    return repr(value)


def suggest_optimizer(
    trial: optuna.trial.BaseTrial,
    *,
    lr: tuple[float, float] = (1e-5, 1e-3),
    weight_decay: tuple[float, float] | Sequence[float] = (1e-6, 1e-2),
) -> dict[str, str]:
    """Learning rate (log-uniform) and weight decay: the part every space shares.

    ``weight_decay`` is a (low, high) log-uniform range, or a list of choices (to include 0, as for models
    whose reference uses plain Adam without decay).
    """
    if isinstance(weight_decay, tuple) and len(weight_decay) == 2:
        wd = trial.suggest_float("train.weight_decay", *weight_decay, log=True)
    else:
        wd = trial.suggest_categorical("train.weight_decay", list(weight_decay))
    return {"lr": number_str(trial.suggest_float("train.lr", *lr, log=True)), "weight_decay": number_str(wd)}


def suggest_model(trial: optuna.trial.BaseTrial, spec: Mapping[str, tuple]) -> dict[str, str]:
    """Model fields from a compact spec: ``{"dropout": ("float", 0.0, 0.5), "hidden_dim": ("cat", [128, 256])}``.

    Kinds: ``("float", low, high[, log])``, ``("int", low, high[, log])``, ``("cat", choices)``. The Optuna
    parameter is named ``model.<field>``.
    """
    out: dict[str, str] = {}
    for name, (kind, *args) in spec.items():
        key = f"model.{name}"
        if kind == "float":
            value = trial.suggest_float(key, args[0], args[1], log=bool(args[2:] and args[2]))
        elif kind == "int":
            value = trial.suggest_int(key, args[0], args[1], log=bool(args[2:] and args[2]))
        elif kind == "cat":
            value = trial.suggest_categorical(key, list(args[0]))
        else:  # a programming error in a space module, not user input
            raise ValueError(f"search space field {name}: unknown kind {kind!r}")
        if isinstance(value, bool):
            out[name] = str(value).lower()
        else:
            out[name] = value if isinstance(value, str) else number_str(value)
    return out
