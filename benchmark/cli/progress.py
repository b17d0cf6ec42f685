"""rich progress bars for `benchmark run` (folds × epochs); the library itself only logs.

On a terminal the bars update in place. Piped (``make demo | tee``, CI logs) live bars cannot render, so each
fold ends with one line that names the model, the fold and its numbers instead.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from benchmark.cli.pace import Pace, duration
from benchmark.run.outcome import FoldOutcome
from benchmark.run.runner import RunObserver

__all__ = ["RichObserver", "fold_line", "steady_seconds"]


def fold_line(model: str, fold: int, folds: Sequence[int], max_epochs: int, outcome: FoldOutcome) -> str:
    """``abmil fold 2 (3/5): 14/20 epochs, best 9, val AUC 0.812, test fine AUC 0.790, acc 0.550, 12.3 s``."""
    val = (
        outcome.val.levels["fine"].overall.get("auc", float("nan"))
        if outcome.val is not None
        else float("nan")
    )
    test = outcome.test.levels["fine"].overall
    position = f" ({folds.index(fold) + 1}/{len(folds)})" if fold in folds else ""
    return (
        f"{model} fold {fold}{position}: {outcome.epochs_run}/{max_epochs} epochs, best {outcome.best_epoch}, "
        f"val AUC {val:.3f}, test fine AUC {test.get('auc', float('nan')):.3f}, "
        f"acc {test.get('accuracy', float('nan')):.3f}, {outcome.seconds:.1f} s"
    )


def steady_seconds(clock: Sequence[float], end: float) -> float:
    """A fold's duration without its warm-up: the first epoch (which also pays for building the model,
    moving data and first-call kernel set-up; 9.6 s vs 1.5 s for the next folds in a measured demo) counts
    as the median of the later epochs.

    Args:
        clock: the fold's start time, then the end time of every epoch (`time.perf_counter`).
        end: when the fold ended (test and logging included).
    """
    if len(clock) < 3:  # fewer than two epochs: nothing to compare the first one with
        return end - clock[0]
    later = statistics.median(b - a for a, b in zip(clock[1:-1], clock[2:], strict=True))
    return end - clock[1] + later


class RichObserver(RunObserver):
    """One bar per model over folds, one bar over the current fold's epochs."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=16),  # fixed: the text columns keep their room at 80 columns
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._model_tasks: dict[str, TaskID] = {}  # cells of a parallel run finish in any order
        self._epoch_task: TaskID | None = None
        self._epochs = 0
        self._folds: list[int] = []
        self._lines = not console.is_terminal  # piped: one line per fold instead of live bars
        self._pace: Pace | None = None
        self._estimated = False
        self._clock: list[float] = []

    def __enter__(self) -> RichObserver:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_plan(
        self, methods: Sequence[str], folds: Sequence[int], epochs: Mapping[str, int], workers: int = 1
    ) -> None:
        self._pace = Pace(methods, folds, epochs, workers=workers)
        if len(methods) * len(folds) > 1:
            self.console.print(self._pace.plan_line(), highlight=False)

    def on_model_start(self, model: str, folds: Sequence[int], done: Sequence[int], epochs: int) -> None:
        if self._pace is not None:
            self._pace.skipped(model, len(done))
        self._epochs = epochs
        self._folds = list(folds)
        info = f"skipped finished {list(done)}" if done else ""
        task = self.progress.add_task(f"[bold]{model}[/bold] folds", total=len(folds), info=info)
        self.progress.update(task, completed=len(done))
        self._model_tasks[model] = task

    def on_fold_start(self, model: str, fold: int) -> None:
        if self._epoch_task is not None:
            self.progress.remove_task(self._epoch_task)
        self._epoch_task = self.progress.add_task(f"  fold {fold} epochs", total=self._epochs, info="")
        self._clock = [time.perf_counter()]  # fold start, then the end of every epoch

    def on_epoch(self, model: str, fold: int, epoch: int, record: Mapping[str, float]) -> None:
        info = f"loss {record.get('train.loss', float('nan')):.3f} · val AUC {record.get('val.fine.auc', float('nan')):.3f}"
        self.progress.update(self._epoch_task, completed=epoch + 1, info=info)
        self._clock.append(time.perf_counter())

    def on_fold_end(self, model: str, fold: int, outcome: FoldOutcome) -> None:
        inline = self._epoch_task is not None  # a parallel run's cells ran in workers: no epoch bar
        if inline:
            self.progress.update(self._epoch_task, total=outcome.epochs_run, completed=outcome.epochs_run)
        auc = outcome.test.levels["fine"].overall.get("auc", float("nan"))
        left = ""
        if self._pace is not None:
            seconds = steady_seconds(self._clock, time.perf_counter()) if inline else outcome.seconds
            self._pace.fold_done(model, seconds)
            seconds = self._pace.seconds_left()
            left = f" · ≈{duration(seconds)} left" if seconds else ""
        # Short: at 80 columns the bar keeps 16 characters and this text the rest.
        self.progress.update(self._model_tasks[model], advance=1, info=f"fold {fold} AUC {auc:.3f}{left}")
        if self._lines:
            self.console.print(fold_line(model, fold, self._folds, self._epochs, outcome), highlight=False)
        if not self._estimated and self._pace is not None and (line := self._pace.estimate_line()):
            self._estimated = True
            if sum(self._pace.remaining.values()):
                self.console.print(line, highlight=False)

    def on_model_end(self, model: str, aggregated: Mapping[str, Mapping[str, object]]) -> None:
        if self._epoch_task is not None:
            self.progress.remove_task(self._epoch_task)
            self._epoch_task = None
