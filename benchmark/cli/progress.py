"""rich progress bars for `benchmark run` (folds × epochs); the library itself only logs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from benchmark.run.outcome import FoldOutcome
from benchmark.run.runner import RunObserver

__all__ = ["RichObserver"]


class RichObserver(RunObserver):
    """One bar per model over folds, one bar over the current fold's epochs."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._model_task = None
        self._epoch_task = None
        self._epochs = 0

    def __enter__(self) -> RichObserver:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_model_start(self, model: str, folds: Sequence[int], done: Sequence[int], epochs: int) -> None:
        self._epochs = epochs
        info = f"skipped finished {list(done)}" if done else ""
        self._model_task = self.progress.add_task(f"[bold]{model}[/bold] folds", total=len(folds), info=info)
        self.progress.update(self._model_task, completed=len(done))

    def on_fold_start(self, model: str, fold: int) -> None:
        if self._epoch_task is not None:
            self.progress.remove_task(self._epoch_task)
        self._epoch_task = self.progress.add_task(f"  fold {fold} epochs", total=self._epochs, info="")

    def on_epoch(self, model: str, fold: int, epoch: int, record: Mapping[str, float]) -> None:
        info = f"loss {record.get('train.loss', float('nan')):.3f}  val AUC {record.get('val.fine.auc', float('nan')):.3f}"
        self.progress.update(self._epoch_task, completed=epoch + 1, info=info)

    def on_fold_end(self, model: str, fold: int, outcome: FoldOutcome) -> None:
        self.progress.update(self._epoch_task, total=outcome.epochs_run, completed=outcome.epochs_run)
        auc = outcome.test.levels["fine"].overall.get("auc", float("nan"))
        acc = outcome.test.levels["fine"].overall.get("accuracy", float("nan"))
        self.progress.update(
            self._model_task,
            advance=1,
            info=f"fold {fold}: test fine AUC {auc:.3f} acc {acc:.3f} (best epoch {outcome.best_epoch})",
        )

    def on_model_end(self, model: str, aggregated: Mapping[str, Mapping[str, object]]) -> None:
        if self._epoch_task is not None:
            self.progress.remove_task(self._epoch_task)
            self._epoch_task = None
