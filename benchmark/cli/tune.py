"""``benchmark tune``: parse, call `benchmark.api.tune`, render the studies (rich or JSON)."""

from __future__ import annotations

import argparse
import dataclasses
import json

from rich.console import Console

from benchmark import api
from benchmark.cli.render import console
from benchmark.cli.requests import (
    cv_config,
    data_config,
    model_names,
    names,
    overrides,
    slurm_options,
    tracking_config,
)
from benchmark.cli.run import live
from benchmark.cli.tune_render import RichTuneObserver, summary_table
from benchmark.tune.request import TuneRequest
from benchmark.tune.storage import check_storage_url

__all__ = ["cmd_tune", "tune_request"]


def cmd_tune(args: argparse.Namespace) -> int:
    request = tune_request(args)
    # With --format json, stdout carries only the JSON document; progress goes to stderr.
    with live(RichTuneObserver(Console(stderr=True) if args.format == "json" else console)) as observer:
        summaries = api.tune(request, observer)
    if args.format == "json":
        print(json.dumps([dataclasses.asdict(s) for s in summaries], indent=1, default=str))
        return 0
    console.print(summary_table(summaries))
    console.print(
        f"Optuna storage {request.storage_url}; dashboard: [bold]optuna-dashboard {request.storage_url}"
        "[/bold]. Train and test with the best parameters: [bold]benchmark run --best[/bold] "
        "or --params-from STUDY."
    )
    return 0


def tune_request(args: argparse.Namespace) -> TuneRequest:
    """``benchmark tune`` options as a `TuneRequest`."""
    # Cheapest and most specific first: the names (dataset, models), the store URLs, then the numbers.
    data = data_config(args)
    models = model_names(names(args.models), option=_typed(args, ("--models", "--model")))
    if args.storage:
        check_storage_url(args.storage)
    tracking = tracking_config(args)
    return TuneRequest(
        models=models,
        trials=args.trials,
        data=data,
        cv=cv_config(args, data.name),
        seed=args.seed,
        overrides=overrides(args),
        tracking=tracking,
        new_splits=args.new_splits,
        folds=args.fold,
        threads=args.threads,
        timeout=args.timeout,
        storage=args.storage,
        study=args.study,
        workers=args.workers,
        metric=args.metric,
        pruner=args.pruner,
        heartbeat=args.heartbeat,
        grace=args.grace,
        max_retry=args.max_retry,
        default_trial=not args.no_default_trial,
        **({"executor": "slurm", "slurm": slurm_options(args)} if args.executor == "slurm" else {}),
    )


def _typed(args: argparse.Namespace, options: tuple[str, ...]) -> str:
    """Which of an option's spellings the user typed (for error messages); all of them when unknown."""
    for arg in reversed(getattr(args, "argv", None) or []):  # argparse keeps the last one given
        typed = [o for o in options if arg == o or arg.startswith(o + "=")]
        if typed:
            return typed[0]
    return "/".join(options)
