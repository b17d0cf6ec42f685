"""Progress hooks of a run: the CLI renders them with rich; the library itself only logs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from benchmark.run.outcome import FoldOutcome

__all__ = ["RunObserver"]


class RunObserver:
    """No-op hooks; subclass and override the ones you need.

    ``on_plan`` comes once before any model: the methods in order, the folds each will run unless already
    finished, and each method's epoch budget.
    """

    def on_plan(self, methods: Sequence[str], folds: Sequence[int], epochs: Mapping[str, int]) -> None: ...

    def on_model_start(self, model: str, folds: Sequence[int], done: Sequence[int], epochs: int) -> None: ...
    def on_fold_start(self, model: str, fold: int) -> None: ...
    def on_epoch(self, model: str, fold: int, epoch: int, record: Mapping[str, float]) -> None: ...
    def on_fold_end(self, model: str, fold: int, outcome: FoldOutcome) -> None: ...
    def on_model_end(self, model: str, aggregated: Mapping[str, Mapping[str, object]]) -> None: ...
