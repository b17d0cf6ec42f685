"""``benchmark status``: the cells of an experiment, from MLflow."""

from __future__ import annotations

import argparse
import dataclasses
import json

from rich.table import Table

from benchmark import api
from benchmark.cli.render import console
from benchmark.cli.requests import check_tracking

__all__ = ["cmd_status"]


def _folds(folds: list[int]) -> str:
    return ",".join(map(str, folds)) if folds else "–"


def cmd_status(args: argparse.Namespace) -> int:
    check_tracking(args.tracking_uri)
    experiment = args.experiment or args.dataset.lower()
    rows = api.status(experiment, tracking_uri=args.tracking_uri)
    if args.format == "json":
        print(json.dumps([dataclasses.asdict(r) for r in rows], indent=1))
        return 0
    table = Table(title=f"{experiment} · cells by method (fold indices)")
    for name in ("method", "config", "parent", "finished", "running", "failed", "killed", "pending"):
        table.add_column(name, no_wrap=name in ("method", "config", "parent"))
    for r in rows:
        counts = {s: r.folds[s] for s in ("finished", "running", "failed", "killed", "pending")}
        table.add_row(
            r.method,
            r.config_hash[:12],
            r.parent_status,
            *(f"{len(v)}: {_folds(v)}" if v else "–" for v in counts.values()),
        )
    console.print(table)
    if not rows:
        console.print("no parent runs yet in this experiment")
    return 0
