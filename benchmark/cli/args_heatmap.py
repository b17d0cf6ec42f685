"""Parser of ``benchmark heatmap`` (help texts here; the work is in `benchmark.heatmap`)."""

from __future__ import annotations

import argparse

from benchmark.cli.options import EPILOG, add_common, add_tracking_options

__all__ = ["add_heatmap_command"]


def add_heatmap_command(sub, subs: dict[str, argparse.ArgumentParser]) -> None:  # noqa: ANN001 - argparse's private type
    """``benchmark heatmap``."""
    p = subs["heatmap"] = sub.add_parser(
        "heatmap",
        help="draw a logged model's attention on one slide (PNG)",
        description="Load a fold's checkpoint from MLflow, compute the slide's attention (one panel per "
        "class for class-wise models such as HMIL and CLAM-MB) and draw it at the patch coordinates "
        "stored with the features: rasterised, or over the slide's thumbnail with --wsi. A parent run id "
        "uses the fold whose test part holds the slide.",
        epilog=EPILOG,
    )
    p.add_argument("--run", required=True, metavar="RUN_ID", help="parent (method) or fold run id")
    p.add_argument("--slide", required=True, metavar="ID", help="slide id (as in predictions.csv)")
    p.add_argument(
        "--wsi",
        default=None,
        metavar="PATH",
        help="the slide's whole-slide image, to draw over its thumbnail (needs pip install 'hmil-bench[wsi]'; "
        "default: rasterised on white)",
    )
    p.add_argument(
        "--class",
        dest="head",
        default=None,
        metavar="C",
        help="draw only this class's attention head (class-wise models; default: every head)",
    )
    p.add_argument(
        "--patch-size",
        type=float,
        default=None,
        metavar="PX",
        help="patch side in level-0 pixels (default: the feature file's patch_size attributes, else the "
        "smallest coordinate spacing)",
    )
    p.add_argument(
        "--output", default=None, metavar="PNG", help="output file (default: ./heatmap_<slide>[_<class>].png)"
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="the dataset's root, when it moved since the run (default: as recorded)",
    )
    add_tracking_options(p, experiment=None)
    p.add_argument("--format", choices=("table", "json"), default="table")
    add_common(p)
