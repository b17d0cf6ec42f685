"""Overrides of config fields: ``--set section.key=value`` strings (parsed, then cast to each field's type) and
typed values from CLI options and config files (checked against the field types).

Kept apart from `benchmark.core.config` (which defines what a run's config is) because the same casting serves
every section: train, model hyperparameters (each model's own dataclass) and loss terms.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from benchmark.core.errors import ConfigError

__all__ = ["Overrides", "apply_overrides", "cast_value", "check_value", "parse_set_options"]


def cast_value(raw: str, annotation: Any, key: str) -> Any:
    """Cast a command-line string to a dataclass field type (int, float, bool, str, Optional[...])."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if raw.lower() in ("none", "null", ""):
            return None
        annotation = args[0]
    try:
        if annotation is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if annotation is int:
            return int(raw)
        if annotation is float:
            return float(raw)
        if annotation in (tuple, list) or typing.get_origin(annotation) in (tuple, list):
            return tuple(
                int(v) if v.strip().lstrip("-").isdigit() else v.strip() for v in raw.split(",") if v.strip()
            )
        return str(raw)
    except ValueError:
        raise ConfigError(
            f"{key}={raw!r} is not a valid {getattr(annotation, '__name__', annotation)}."
        ) from None


def check_value(value: Any, annotation: Any, key: str) -> Any:
    """A typed value (CLI option, config file) checked against a field type; JSON lists become tuples."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if annotation in (tuple, list) or typing.get_origin(annotation) in (tuple, list):
        if isinstance(value, list | tuple):
            return tuple(value)
    elif annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # TOML/JSON write 1e-4 as a float but 1 as an int
    elif annotation is bool and isinstance(value, bool):
        return value
    elif isinstance(annotation, type) and isinstance(value, annotation) and not isinstance(value, bool):
        return value
    elif annotation is Any or not isinstance(annotation, type):
        return value
    kind = getattr(annotation, "__name__", annotation)
    raise ConfigError(f"{key}={value!r} is not a valid {kind}.")


def apply_overrides(obj: Any, overrides: Mapping[str, Any], section: str) -> Any:
    """Return a copy of dataclass ``obj`` with overrides applied: strings (``--set``) are cast to the field
    types, typed values (CLI options, config files) are checked against them."""
    hints = typing.get_type_hints(type(obj))  # resolves the postponed (string) annotations
    fields = {f.name for f in dataclasses.fields(obj)}
    changes = {}
    for key, value in overrides.items():
        if key not in fields:
            raise ConfigError(f"unknown option {section}.{key}; valid: {', '.join(sorted(fields))}.")
        cast = cast_value if isinstance(value, str) else check_value
        changes[key] = cast(value, hints[key], f"{section}.{key}")
    return dataclasses.replace(obj, **changes)


def parse_set_options(items: Iterable[str]) -> dict[str, dict[str, str]]:
    """``["train.lr=1e-3", "model.dropout=0"]`` → ``{"train": {"lr": "1e-3"}, "model": {"dropout": "0"}}``."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ConfigError(f"--set {item!r} must look like section.key=value, e.g. train.lr=3e-4.")
        if section not in ("model", "train", "data", "cv", "loss"):
            raise ConfigError(
                f"--set {item!r}: unknown section {section!r}; use model, train, data, cv or loss."
            )
        out.setdefault(section, {})[name] = value.strip()
    return out


@dataclass(frozen=True)
class Overrides:
    """Overrides per config section (``train``, ``model``, ``loss``), later layers winning.

    Values are either typed (``--batch-size 16`` gives the int 16, a config file gives TOML/JSON values) or
    strings as ``--set section.key=value`` and the search spaces give them; `apply_overrides` casts strings to
    the field types and checks typed values, so both reach the frozen config unchanged.
    """

    train: Mapping[str, Any] = field(default_factory=dict)
    model: Mapping[str, Any] = field(default_factory=dict)
    loss: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {"train": dict(self.train), "model": dict(self.model), "loss": dict(self.loss)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, str]]) -> Overrides:
        return cls(
            **{k: {kk: str(vv) for kk, vv in data.get(k, {}).items()} for k in ("train", "model", "loss")}
        )

    @staticmethod
    def combine(*layers: Overrides) -> Overrides:
        """One set of overrides from several; a later layer wins on a key both set."""
        out: dict[str, dict[str, str]] = {"train": {}, "model": {}, "loss": {}}
        for layer in layers:
            for section in out:
                out[section].update(getattr(layer, section))
        return Overrides(**out)

    @classmethod
    def from_set_options(cls, items: Iterable[str]) -> Overrides:
        """``--set`` options (``train.lr=1e-3`` …); data and cv have their own options."""
        sets = parse_set_options(items)
        if sets.get("data") or sets.get("cv"):
            raise ConfigError(
                "--set supports model.*, train.* and loss.*; data and cv have their own options."
            )
        return cls(train=sets.get("train", {}), model=sets.get("model", {}), loss=sets.get("loss", {}))

    def flat(self) -> dict[str, Any]:
        """``{"train.lr": "0.0003", "model.dropout": "0.1", "loss.supcon.weight": "0.5"}``."""
        return {f"{section}.{k}": v for section, values in self.to_dict().items() for k, v in values.items()}
