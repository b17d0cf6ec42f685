"""A small name → object registry, used once for models and once for datasets.

Duplicates raise; unknown names raise with the valid names and the closest match.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from benchmark.core.errors import UnknownNameError

__all__ = ["Registry", "RegistryEntry"]

T = TypeVar("T")


@dataclass(frozen=True)
class RegistryEntry(Generic[T]):
    """One registered object plus free-form metadata (e.g. its config class)."""

    name: str
    obj: T
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Name → object map with decorator registration.

    Args:
        kind: what is registered ("model", "dataset"); used in error messages.
        option: the CLI option that takes these names, for the fix in error messages.
    """

    def __init__(self, kind: str, option: str) -> None:
        self.kind = kind
        self.option = option
        self._entries: dict[str, RegistryEntry[T]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator: ``@REGISTRY.register("abmil", config=ABMILConfig)``."""
        if name != name.lower() or " " in name or "_" in name:
            raise ValueError(f"{self.kind} name {name!r} must be lowercase and hyphenated")

        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = RegistryEntry(name, obj, dict(meta))
            return obj

        return decorator

    def entry(self, name: str) -> RegistryEntry[T]:
        """Look up a name; unknown names raise `UnknownNameError` listing the valid ones."""
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(sorted(self._entries))
            close = difflib.get_close_matches(name, self._entries, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r} for {self.option}; valid names: {valid}.{hint}"
            ) from None

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[RegistryEntry[T]]:
        return iter(self._entries[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._entries)
