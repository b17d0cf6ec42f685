"""``benchmark perf``: throughput of the batched path vs a reference-style loop (rich table or JSON)."""

from __future__ import annotations

import argparse
import json

from benchmark.cli.render import console, render_perf
from benchmark.cli.requests import data_config, names
from benchmark.run.perf import run_perf

__all__ = ["cmd_perf"]


def cmd_perf(args: argparse.Namespace) -> int:
    rows = run_perf(
        data_config(args),
        names(args.models),
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_slides=args.slides,
        device=args.device,
    )
    if args.format == "json":
        print(json.dumps(rows, indent=1))
    else:
        render_perf(console, rows)
    return 0
