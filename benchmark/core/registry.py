"""A small typed name → object registry: one for models (`ModelSpec`), datasets (`DatasetSpec`) and search
spaces.

Names are looked up case-insensitively (`Registry.resolve` gives the canonical lowercase name, the one kept in
configs); duplicates raise; unknown names raise with the valid names and the closest match.
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

    def resolve(self, name: str, *, option: str | None = None) -> str:
        """The registered (canonical, lowercase) name for ``name`` typed in any case: ``"ABMIL"`` → ``"abmil"``.

        Unknown names raise `UnknownNameError` listing the valid ones and the closest match; ``option`` names
        the option the user typed in that message (default: the registry's).
        """
        if name in self._items:
            return name
        if name.lower() in self._items:
            return name.lower()
        valid = ", ".join(sorted(self._items))
        close = difflib.get_close_matches(name.lower(), self._items, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownNameError(
            f"unknown {self.kind} {name!r} for {option or self.option}; valid names: {valid}.{hint}"
        )

    def get(self, name: str, *, option: str | None = None) -> T:
        """Look up a name, case-insensitively (see `resolve`); unknown names raise `UnknownNameError`."""
        return self._items[self.resolve(name, option=option)]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        """The registered objects, sorted by name."""
        return iter(self._items[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._items)
