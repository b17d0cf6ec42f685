"""``benchmark run`` (also with ``--params-from``/``--best``) and ``benchmark ablate``: parse, call
`benchmark.api`, render."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import TypeVar

from benchmark import api
from benchmark.cli.progress import RichObserver
from benchmark.cli.render import console
from benchmark.cli.requests import run_request
from benchmark.run.runner import RunSummary
from benchmark.tune.storage import check_storage_url

__all__ = ["cmd_ablate", "cmd_run", "live"]

Observer = TypeVar("Observer")


@contextlib.contextmanager
def live(observer: Observer) -> Iterator[Observer]:
    """``with observer`` (a rich progress display) that leaves no trace when it fails before showing anything.

    On a non-terminal rich ends a stopped display with an empty line (`Progress.stop`): an error raised before
    the first bar (bad data found while loading) would come after a stray blank line.
    """
    with observer:  # type: ignore[attr-defined]
        try:
            yield observer
        except BaseException:
            progress = observer.progress  # type: ignore[attr-defined]
            if not progress.tasks:
                progress.live.transient = True
                progress.live.stop()
                progress.disable = True  # the observer's exit then prints nothing
            raise


def cmd_run(args: argparse.Namespace) -> int:
    request = run_request(args)
    if (args.params_from or args.best) and args.storage:
        check_storage_url(args.storage)  # before any data are loaded
    with live(RichObserver(console)) as observer:
        if args.params_from or args.best:  # parameters from an Optuna study (`benchmark tune`)
            tuned = api.run_tuned(
                request, study=args.params_from, best=args.best, storage=args.storage, observer=observer
            )
            summary, methods = tuned.summary, list(tuned.parents)
        else:
            summary = api.run(request, observer)
            methods = list(summary.parents)
    if args.params_from or args.best:
        for best in tuned.studies:
            console.print(
                f"{best.model}-tuned: parameters of study {best.study} trial {best.trial} "
                f"(validation {best.value:.4f})"
            )
    submitted = request.executor == "slurm" and not request.slurm.wait  # cells still to run on the cluster
    if submitted:
        console.print(
            f"submitted: `benchmark status --experiment {summary.experiment}` shows the cells; the last cell of "
            "each method closes its parent run"
        )
    _report(summary, methods, compare=not args.no_compare and not submitted)
    return 0


def _report(summary: RunSummary, methods: list[str], *, compare: bool) -> None:
    console.print(
        f"[bold]MLflow[/bold] {summary.tracking_uri}  experiment [bold]{summary.experiment}[/bold]  "
        f"splits {summary.split_file} (sha256 {summary.split_digest[:12]}…)"
    )
    for model, skipped in summary.skipped.items():
        if skipped:
            console.print(f"{model}: skipped finished fold(s) {skipped}")
    if compare:
        result = api.compare(
            summary.tracking_uri, summary.experiment, methods=methods, split_digest=summary.split_digest
        )
        console.print(result.to_rich_table(console.width))
    if summary.tracking_uri.startswith(("http://", "https://")):  # a tracking server is its own UI
        console.print("Browse the runs:")
        host = summary.tracking_uri.rstrip("/")
    else:
        console.print(
            f"Browse the runs: [bold]mlflow ui --backend-store-uri {summary.tracking_uri}[/bold], then open"
        )
        host = "http://127.0.0.1:5000"
    # MLflow 3.x opens experiments in its GenAI view unless asked for the model-training one.
    console.print(f"  {ui_url(summary.experiment_id, host)}", highlight=False, soft_wrap=True)


def ui_url(experiment_id: str, host: str = "http://127.0.0.1:5000") -> str:
    """The MLflow UI page listing an experiment's runs (model-training view, parents with their folds)."""
    return f"{host}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def cmd_ablate(args: argparse.Namespace) -> int:
    rungs = [r.strip() for r in args.rungs.split(",") if r.strip()] if args.rungs else None
    with live(RichObserver(console)) as observer:
        tables = api.ablate(run_request(args, [args.model]), rungs, observer, model=args.model)
    for level, table in tables.items():
        if args.format == "json":
            print(table.to_json())
        elif args.format == "md":
            print(f"### {level}\n\n{table.to_markdown()}\n")
        else:
            console.print(table.to_rich_table(console.width))
    return 0
