"""rich rendering for ``benchmark tune``: a bar over each study's new trials and the summary table."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from benchmark.tune.engine import StudySummary, TuneObserver

__all__ = ["RichTuneObserver", "summary_table"]


class RichTuneObserver(TuneObserver):
    """One bar per study over this invocation's trials; the info column shows the latest fold and the best."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._task = None
        self._best: float | None = None

    def __enter__(self) -> RichTuneObserver:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_study_start(self, model: str, study: str, new_trials: int, existing: int) -> None:
        self._best = None
        info = f"resuming after {existing} trial(s)" if existing else ""
        self._task = self.progress.add_task(f"[bold]{study}[/bold] trials", total=new_trials, info=info)

    def on_fold(self, model: str, trial: int, fold: int, value: float) -> None:
        self.progress.update(
            self._task, info=f"trial {trial} fold {fold}: val {value:.3f}{self._best_text()}"
        )

    def on_trial_end(self, model: str, trial: int, state: str, value: float | None) -> None:
        if state == "COMPLETE" and value is not None and (self._best is None or value > self._best):
            self._best = value
        shown = f" {value:.3f}" if value is not None else ""
        self.progress.update(self._task, advance=1, info=f"trial {trial} {state}{shown}{self._best_text()}")

    def on_study_end(self, summary: StudySummary) -> None:
        task = self.progress.tasks[-1]
        self.progress.update(self._task, completed=task.total)

    def _best_text(self) -> str:
        return f"  (best this run {self._best:.3f})" if self._best is not None else ""


def summary_table(summaries: Sequence[StudySummary]) -> Table:
    table = Table(title="studies")
    for col in ("study", "trials (state: n)", "best trial", "best value", "best parameters", "budget"):
        table.add_column(col, overflow="fold")
    for s in summaries:
        states = ", ".join(f"{k}: {v}" for k, v in sorted(s.states.items()))
        params = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in s.best_params.items()
        )
        budget = (
            f"{s.budget['trials_requested']} trials requested, {s.budget['epochs']} epochs, patience "
            f"{s.budget['patience']}, folds {s.budget['folds']}, {s.budget['metric']}"
        )
        table.add_row(
            s.study,
            states,
            "" if s.best_trial is None else str(s.best_trial),
            "" if s.best_value is None else f"{s.best_value:.4f}",
            params,
            budget,
        )
    return table
