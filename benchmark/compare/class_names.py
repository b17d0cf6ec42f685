"""Class names as people write them (``ISUP 0``) for the per-class tables, instead of the metric-key
fragments they were logged under (``ISUP_0``, `benchmark.metrics.level.sanitize_key`).

The names come from the parent runs' ``data.hierarchy`` parameter (`benchmark.core.hierarchy.Hierarchy.describe`:
``benign{ISUP 0} | low-grade{ISUP 1, ISUP 2} | …``). A key is renamed only when exactly one class name of
the level sanitizes to it, so a name the description cannot carry unambiguously keeps its key.
"""

from __future__ import annotations

from collections.abc import Iterable

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from benchmark.metrics.level import sanitize_key

__all__ = ["display_names", "parse_hierarchy"]


def parse_hierarchy(described: str) -> tuple[list[str], list[str]] | None:
    """``(fine names, coarse names)`` from a ``Hierarchy.describe()`` string; None when it does not parse."""
    fine: list[str] = []
    coarse: list[str] = []
    for part in described.split(" | "):
        name, brace, rest = part.partition("{")
        if not brace or not rest.endswith("}"):
            return None
        coarse.append(name)
        fine.extend(rest[:-1].split(", "))
    return fine, coarse


def display_names(tracking_uri: str, parent_ids: Iterable[str], level: str) -> dict[str, str]:
    """Metric-key fragment → class name at ``level`` ("fine", "coarse" or "coarse_head"), from the parents."""
    client = MlflowClient(tracking_uri=tracking_uri)
    candidates: dict[str, set[str]] = {}
    for parent_id in sorted(set(parent_ids)):
        try:
            described = client.get_run(parent_id).data.params.get("data.hierarchy", "")
        except MlflowException:
            continue
        parsed = parse_hierarchy(described) if described else None
        if parsed is None:
            continue
        for name in parsed[0] if level == "fine" else parsed[1]:
            candidates.setdefault(sanitize_key(name), set()).add(name)
    return {key: next(iter(names)) for key, names in candidates.items() if len(names) == 1}
