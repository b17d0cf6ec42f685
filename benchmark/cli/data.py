"""``benchmark splits make|show`` and ``benchmark data check|pack|stats``: parse, call, render."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from benchmark import api
from benchmark.cli.data_stats import stats_table
from benchmark.cli.render import console, render_check
from benchmark.cli.requests import cv_config, data_config
from benchmark.core.errors import BenchmarkError
from benchmark.data.loading import dataset_info

__all__ = ["cmd_data_check", "cmd_data_pack", "cmd_data_stats", "cmd_splits_make", "cmd_splits_show"]


def cmd_splits_make(args: argparse.Namespace) -> int:
    data = data_config(args)
    cv = cv_config(args, data.name)
    bags, splits, path, digest = api.splits(data, cv, new_splits=args.new_splits)
    if args.format == "json":
        print(json.dumps({"path": str(path), "sha256": digest, "slides": len(splits)}))
    else:
        console.print(f"{path}  sha256 {digest}  ({len(splits)} slides, {cv.n_folds} folds, {cv.protocol})")
    return 0


def cmd_splits_show(args: argparse.Namespace) -> int:
    data = data_config(args)
    bags, splits, path, digest = api.splits(data, cv_config(args, data.name), new_splits=args.new_splits)
    counts = api.describe_splits(splits, bags.table(), class_names=bags.hierarchy.fine)
    if args.format == "json":
        print(counts.to_json(orient="records"))
        return 0
    console.print(f"{path}  sha256 {digest}")
    table = Table()
    for col in counts.reset_index().columns:
        table.add_column(str(col), justify="right")
    for row in counts.reset_index().itertuples(index=False):
        table.add_row(*[str(v) for v in row])
    console.print(table)
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    data = data_config(args)
    report = api.check_data(data)
    if args.format == "json":
        print(json.dumps(report.to_dict(), indent=1, default=str))
        if not report.ok:
            raise BenchmarkError(
                f"dataset {data.name}: {len(report.problems)} problem(s), in the report's problems."
            )
        return 0
    if not report.ok and not report.counts and not report.bag_sizes:
        # Nothing could be read (no data dir, no label file, …): the one problem is the error; the layout the
        # loader expects is what helps.
        layout = dataset_info(data.name).layout
        if layout:
            console.print(f"expected layout of {data.name}:\n{layout}", markup=False, highlight=False)
        raise BenchmarkError("; ".join(report.problems))
    render_check(console, report)
    if not report.ok:
        raise BenchmarkError(
            f"dataset {data.name}: {len(report.problems)} problem(s), listed above; fix them and re-run."
        )
    return 0


def cmd_data_pack(args: argparse.Namespace) -> int:
    console.print(f"packed cache: {api.pack_data(data_config(args), force=args.force)}")
    return 0


def cmd_data_stats(args: argparse.Namespace) -> int:
    data = data_config(args)
    stats = api.feature_stats(data, max_instances=args.max_instances, seed=args.seed)
    if args.format == "json":
        print(json.dumps({"dataset": data.name, **stats.to_dict()}, indent=1))
    else:
        console.print(stats_table(data.name, stats))
    if args.plot:
        from benchmark.data.stats_figure import spectrum_figure  # seaborn/matplotlib: 1.3 s, only for --plot

        path = spectrum_figure({data.name: stats}, args.plot)
        (Console(stderr=True) if args.format == "json" else console).print(f"wrote {path}")
    return 0
