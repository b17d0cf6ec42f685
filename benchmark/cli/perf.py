"""``benchmark perf``: reference vs batched vs compute-floor training throughput (rich table, Markdown or JSON)."""

from __future__ import annotations

import argparse
import json

from benchmark import api
from benchmark.cli.render import console, render_perf
from benchmark.cli.requests import data_config, names

__all__ = ["cmd_perf"]


def cmd_perf(args: argparse.Namespace) -> int:
    report = api.perf(
        data_config(args),
        names(args.models),
        bags=args.bags,
        epochs=args.epochs,
        batch_size=args.batch_size,
        slides=args.slides,
        device=args.device,
        threads=args.threads,
        seed=args.seed,
    )
    if args.format == "json":
        print(json.dumps(report.to_dict(), indent=1))
    else:
        render_perf(console, report, markdown=args.format == "markdown")
    return 0
