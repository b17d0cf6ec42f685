"""``benchmark tune``: parse, call `benchmark.api.tune`, render the studies (rich or JSON)."""

from __future__ import annotations

import argparse
import dataclasses
import json

from rich.console import Console

from benchmark import api
from benchmark.cli.render import console
from benchmark.cli.requests import cv_config, data_config, names, overrides, tracking_config
from benchmark.cli.tune_render import RichTuneObserver, summary_table
from benchmark.tune.request import TuneRequest

__all__ = ["cmd_tune", "tune_request"]


def cmd_tune(args: argparse.Namespace) -> int:
    request = tune_request(args)
    # With --format json, stdout carries only the JSON document; progress goes to stderr.
    with RichTuneObserver(Console(stderr=True) if args.format == "json" else console) as observer:
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
    data = data_config(args)
    return TuneRequest(
        models=names(args.models),
        trials=args.trials,
        data=data,
        cv=cv_config(args, data.name),
        seed=args.seed,
        overrides=overrides(args),
        tracking=tracking_config(args),
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
    )
