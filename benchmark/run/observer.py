"""Progress hooks of a run: the CLI renders them with rich; the library itself only logs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from benchmark.run.outcome import FoldOutcome

__all__ = ["RunObserver"]


class RunObserver:
    """No-op hooks; subclass and override the ones you need.

    ``on_plan`` comes once before any model: the methods in order, the folds each will run unless already
    finished, each method's epoch budget and how many worker processes share the cells (``--jobs``).
    With ``--executor local`` the cells run in workers: ``on_fold_start``/``on_epoch`` are not called and
    ``on_fold_end`` comes as each cell finishes, in any order.
    """

    def on_plan(
        self, methods: Sequence[str], folds: Sequence[int], epochs: Mapping[str, int], workers: int = 1
    ) -> None: ...

    def on_model_start(self, model: str, folds: Sequence[int], done: Sequence[int], epochs: int) -> None: ...
    def on_fold_start(self, model: str, fold: int) -> None: ...
    def on_epoch(self, model: str, fold: int, epoch: int, record: Mapping[str, float]) -> None: ...
    def on_fold_end(self, model: str, fold: int, outcome: FoldOutcome) -> None: ...
    def on_model_end(self, model: str, aggregated: Mapping[str, Mapping[str, object]]) -> None: ...
