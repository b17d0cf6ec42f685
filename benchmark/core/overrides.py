"""``--set section.key=value`` overrides: parse them and cast each string to its config field's type.

Kept apart from `benchmark.core.config` (which defines what a run's config is) because the same casting serves
every section: train, model hyperparameters (each model's own dataclass) and loss terms.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from benchmark.core.errors import ConfigError

__all__ = ["apply_overrides", "cast_value", "parse_set_options"]


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


def apply_overrides(obj: Any, overrides: Mapping[str, str], section: str) -> Any:
    """Return a copy of dataclass ``obj`` with string overrides cast to the field types."""
    hints = typing.get_type_hints(type(obj))  # resolves the postponed (string) annotations
    fields = {f.name for f in dataclasses.fields(obj)}
    changes = {}
    for key, raw in overrides.items():
        if key not in fields:
            raise ConfigError(f"unknown option {section}.{key}; valid: {', '.join(sorted(fields))}.")
        changes[key] = cast_value(raw, hints[key], f"{section}.{key}")
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
