"""A small typed name → object registry: one for models (`ModelSpec`), datasets (`DatasetSpec`) and search
spaces.

Duplicates raise; unknown names raise with the valid names and the closest match (case-insensitive).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Generic, TypeVar

from benchmark.core.errors import UnknownNameError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → typed object map.

    Args:
        kind: what is registered ("model", "dataset"); used in error messages.
        option: the CLI option that takes these names, for the fix in error messages.
    """

    def __init__(self, kind: str, option: str) -> None:
        self.kind = kind
        self.option = option
        self._items: dict[str, T] = {}

    def add(self, name: str, obj: T) -> T:
        """Register ``obj`` under ``name`` (lowercase, hyphenated); a second registration raises."""
        if name != name.lower() or " " in name or "_" in name:
            raise ValueError(f"{self.kind} name {name!r} must be lowercase and hyphenated")
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = obj
        return obj

    def get(self, name: str) -> T:
        """Look up a name; unknown names raise `UnknownNameError` listing the valid ones."""
        try:
            return self._items[name]
        except KeyError:
            valid = ", ".join(sorted(self._items))
            lowered = {n.lower(): n for n in self._items}
            close = [lowered[name.lower()]] if name.lower() in lowered else []
            close = close or difflib.get_close_matches(name.lower(), self._items, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r} for {self.option}; valid names: {valid}.{hint}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        """The registered objects, sorted by name."""
        return iter(self._items[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._items)
