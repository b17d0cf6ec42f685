"""``benchmark heatmap``: one slide's attention from a logged fold model, written to a PNG."""

from __future__ import annotations

import argparse
import dataclasses
import json

from benchmark import api
from benchmark.cli.requests import check_tracking
from benchmark.heatmap.make import HeatmapRequest

__all__ = ["cmd_heatmap"]


def cmd_heatmap(args: argparse.Namespace) -> int:
    check_tracking(args.tracking_uri)
    request = HeatmapRequest(
        run=args.run,
        slide=args.slide,
        output=args.output,
        wsi=args.wsi,
        head=args.head,
        patch_size=args.patch_size,
        data_dir=args.data_dir,
    )
    result = api.heatmap(request, tracking_uri=args.tracking_uri)
    if args.format == "json":
        print(json.dumps({**dataclasses.asdict(result), "path": str(result.path)}, indent=1))
        return 0
    where = (
        "over the slide"
        if result.overlay
        else ("at the patch coordinates" if result.has_coords else "in index order")
    )
    print(
        f"wrote {result.path}: {result.model} fold {result.fold} (run {result.fold_run}), "
        f"{result.n_instances} patches {where}, heads: {', '.join(result.heads)}"
    )
    return 0
