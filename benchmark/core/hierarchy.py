"""Two-level label hierarchies: ordered fine classes, ordered coarse classes, a fine → coarse parent map.

The 0/1 matrix M (K_f × K_c) has M[j, k] = 1 iff fine class j belongs to coarse class k, so the
coarse distribution implied by fine probabilities p (n × K_f) is p @ M (i.e. Mᵀp per row).

A hierarchy can be written as TOML for custom datasets::

    fine = ["NILM", "ASC-US", "LSIL", "ASC-H", "HSIL", "SCC"]   # optional; fixes the fine order
    ordinal = false                                          # optional; true enables QWK
    [groups]                                                 # coarse classes, in order
    negative = ["NILM"]
    positive = ["ASC-US", "LSIL", "ASC-H", "HSIL", "SCC"]
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.core.errors import ConfigError

__all__ = ["Hierarchy"]


@dataclass(frozen=True)
class Hierarchy:
    """A validated fine → coarse class tree.

    Args:
        fine: fine class names, in label-index order.
        coarse: coarse class names, in label-index order.
        parent: ``parent[j]`` is the coarse index of fine class j.
        ordinal: whether the fine classes are ordered grades (enables quadratic weighted kappa).
        source: where the hierarchy came from, for error messages.
    """

    fine: tuple[str, ...]
    coarse: tuple[str, ...]
    parent: tuple[int, ...]
    ordinal: bool = False
    source: str = "<builtin>"

    def __post_init__(self) -> None:
        where = f"hierarchy {self.source}"
        if len(self.fine) < 2:
            raise ConfigError(f"{where}: needs at least 2 fine classes, got {list(self.fine)}.")
        if len(self.coarse) < 1:
            raise ConfigError(f"{where}: needs at least 1 coarse class.")
        for level, names in (("fine", self.fine), ("coarse", self.coarse)):
            dup = sorted({n for n in names if list(names).count(n) > 1})
            if dup:
                raise ConfigError(f"{where}: {level} class names must be unique; repeated: {dup}.")
            if any(not str(n).strip() for n in names):
                raise ConfigError(f"{where}: {level} class names must be non-empty strings.")
        if len(self.parent) != len(self.fine):
            raise ConfigError(
                f"{where}: parent list has {len(self.parent)} entries for {len(self.fine)} fine classes; "
                "give exactly one parent per fine class."
            )
        bad = [(f, p) for f, p in zip(self.fine, self.parent, strict=True) if not 0 <= p < len(self.coarse)]
        if bad:
            raise ConfigError(f"{where}: parent index out of range 0..{len(self.coarse) - 1} for {bad}.")
        empty = [c for k, c in enumerate(self.coarse) if k not in self.parent]
        if empty:
            raise ConfigError(
                f"{where}: coarse class(es) {empty} have no fine class; remove them or assign children."
            )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_groups(
        cls,
        groups: Mapping[str, Sequence[str]],
        *,
        fine: Sequence[str] | None = None,
        ordinal: bool = False,
        source: str = "<builtin>",
    ) -> Hierarchy:
        """Build from ``{coarse: [fine, ...]}``; the fine order is ``fine`` or the groups' concatenation."""
        owner: dict[str, str] = {}
        for coarse_name, children in groups.items():
            if isinstance(children, str) or not isinstance(children, Sequence):
                raise ConfigError(
                    f"hierarchy {source}: group {coarse_name!r} must be a list of fine class names, got {children!r}."
                )
            if len(children) == 0:
                raise ConfigError(f"hierarchy {source}: coarse class {coarse_name!r} has no fine class.")
            if len(set(children)) != len(children):
                raise ConfigError(
                    f"hierarchy {source}: group {coarse_name!r} lists a fine class twice; names must be unique."
                )
            for child in children:
                if child in owner and owner[child] != coarse_name:
                    raise ConfigError(
                        f"hierarchy {source}: fine class {child!r} has two parents ({owner[child]!r} and "
                        f"{coarse_name!r}); each fine class must appear in exactly one group."
                    )
                owner[str(child)] = str(coarse_name)
        order = [str(f) for f in fine] if fine is not None else list(owner)
        missing = [f for f in order if f not in owner]
        if missing:
            raise ConfigError(
                f"hierarchy {source}: fine class(es) {missing} are in no group; add each to one group."
            )
        extra = [f for f in owner if f not in order]
        if extra:
            raise ConfigError(
                f"hierarchy {source}: group member(s) {extra} are missing from the `fine` list."
            )
        coarse = tuple(str(c) for c in groups)
        parent = tuple(coarse.index(owner[f]) for f in order)
        return cls(tuple(order), coarse, parent, ordinal=ordinal, source=source)

    @classmethod
    def from_toml(cls, path: str | Path) -> Hierarchy:
        """Load ``[groups]`` (+ optional ``fine`` order and ``ordinal``) from a TOML file."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"hierarchy file {path} does not exist; pass --hierarchy with a TOML file.")
        try:
            data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"hierarchy file {path} is not valid TOML ({exc}); fix the syntax.") from None
        unknown = sorted(set(data) - {"fine", "ordinal", "groups", "name"})
        if unknown:
            raise ConfigError(
                f"hierarchy file {path}: unknown key(s) {unknown}; allowed: fine, ordinal, groups, name."
            )
        if not isinstance(data.get("groups"), dict) or not data["groups"]:
            raise ConfigError(
                f"hierarchy file {path}: needs a [groups] table mapping coarse classes to fine lists."
            )
        return cls.from_groups(
            data["groups"], fine=data.get("fine"), ordinal=bool(data.get("ordinal", False)), source=str(path)
        )

    # ------------------------------------------------------------------ derived quantities
    @property
    def n_fine(self) -> int:
        return len(self.fine)

    @property
    def n_coarse(self) -> int:
        return len(self.coarse)

    @property
    def matrix(self) -> np.ndarray:
        """M ∈ {0,1}^{K_f × K_c}, float32, M[j, parent[j]] = 1."""
        m = np.zeros((self.n_fine, self.n_coarse), dtype=np.float32)
        m[np.arange(self.n_fine), list(self.parent)] = 1.0
        return m

    def roll_up(self, fine_probs: np.ndarray) -> np.ndarray:
        """Coarse probabilities Mᵀp: (n, K_f) → (n, K_c); rows still sum to 1."""
        return np.asarray(fine_probs, dtype=np.float64) @ self.matrix.astype(np.float64)

    def coarse_of(self, fine_labels: np.ndarray | Sequence[int]) -> np.ndarray:
        """Map fine label indices to coarse label indices."""
        return np.asarray(self.parent, dtype=np.int64)[np.asarray(fine_labels, dtype=np.int64)]

    def children(self, coarse_index: int) -> list[int]:
        return [j for j, p in enumerate(self.parent) if p == coarse_index]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (logged to MLflow, hashed into the config)."""
        return {
            "fine": list(self.fine),
            "coarse": list(self.coarse),
            "parent": list(self.parent),
            "ordinal": self.ordinal,
        }

    def describe(self) -> str:
        """One line, e.g. ``benign{ISUP 0} | low{ISUP 1, ISUP 2} | high{...}``."""
        return " | ".join(
            f"{c}{{{', '.join(self.fine[j] for j in self.children(k))}}}" for k, c in enumerate(self.coarse)
        )
