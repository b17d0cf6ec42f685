"""``benchmark compare``: the methods × metrics table from MLflow (rich, Markdown, LaTeX, CSV or JSON)."""

from __future__ import annotations

import argparse

from benchmark import api
from benchmark.cli.render import console, emit
from benchmark.cli.requests import names
from benchmark.core.errors import ConfigError

__all__ = ["cmd_compare"]


def cmd_compare(args: argparse.Namespace) -> int:
    if args.bootstrap < 0:
        raise ConfigError(f"--bootstrap must be ≥ 0 (0 = no CI), got {args.bootstrap}.")
    result = api.compare(
        args.tracking_uri,
        args.experiment or args.dataset,
        level=args.level,
        per_class=args.per_class,
        methods=names(args.methods) if args.methods else None,
        split_digest=args.split_digest,
        primary=args.primary,
        n_boot=args.bootstrap,
        seed=args.seed,
    )
    if args.format == "table":
        if args.output:
            emit(result.to_markdown(), args.output)
        else:
            console.print(result.to_rich_table(console.width))
    else:
        render = {
            "md": result.to_markdown,
            "latex": result.to_latex,
            "csv": result.to_csv,
            "json": result.to_json,
        }
        emit(render[args.format](), args.output)
    if args.plot:
        api.plot_comparison(result, args.plot)
        if args.format == "table":
            console.print(f"wrote {args.plot}", highlight=False)
    return 0
