"""The ``benchmark`` argument parser: the command map's parsers for run, ablate and compare; the data and tool
commands are in `benchmark.cli.args_data`, tune and validate in `benchmark.cli.args_studies`, heatmap in
`benchmark.cli.args_heatmap` (help texts live here, defaults in the configs, logic elsewhere)."""

from __future__ import annotations

import argparse

from benchmark.cli.args_data import add_data_commands
from benchmark.cli.args_heatmap import add_heatmap_command
from benchmark.cli.args_studies import add_tune_command, add_validate_command
from benchmark.cli.options import (
    EPILOG,
    add_common,
    add_run_options,
    add_tracking_options,
    add_tuned_options,
)

__all__ = ["build_parser"]


def build_parser(version: str) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and its subcommand parsers by name (in the order `--help` lists them)."""
    parser = argparse.ArgumentParser(
        prog="benchmark",
        description="hmil-bench: hierarchical MIL benchmark on identical folds, tracked in MLflow.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"hmil-bench {version}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    subs: dict[str, argparse.ArgumentParser] = {}

    _add_run(sub, subs)
    add_tune_command(sub, subs)
    _add_ablate(sub, subs)
    add_validate_command(sub, subs)
    _add_compare(sub, subs)
    _add_status(sub, subs)
    add_heatmap_command(sub, subs)
    add_data_commands(sub, subs)
    return parser, subs


def _add_run(sub, subs: dict[str, argparse.ArgumentParser]) -> None:  # noqa: ANN001 - argparse's private type
    """``benchmark run``."""
    p = subs["run"] = sub.add_parser(
        "run",
        help="train and test models on every fold, log to MLflow",
        description="Train every model on identical folds and log to MLflow. "
        "Re-running the same command resumes: finished folds are skipped.",
        epilog=EPILOG,
    )
    add_run_options(p, models=True)
    add_tuned_options(p)


def _add_ablate(sub, subs: dict[str, argparse.ArgumentParser]) -> None:  # noqa: ANN001 - argparse's private type
    """``benchmark ablate``: HMIL's ablation ladder."""
    p = subs["ablate"] = sub.add_parser(
        "ablate",
        help="HMIL ablation ladder on identical folds, with paired tests vs the full model",
        description="Run flat gated attention → +coarse branch → +HAM → +HBA → +SupCon → +curriculum (full HMIL) "
        "on the same folds, log each rung to MLflow (experiment <dataset>-ablation) and print the ladder table "
        "with Wilcoxon tests against the full model. Resumable like `run`.",
        epilog=EPILOG,
    )
    add_run_options(p, models=False)
    p.add_argument(
        "--rungs",
        default=None,
        help="comma-separated rungs (default: 1-flat,2-dual,3-ham,4-hba,5-scl,6-full; "
        "also 7-quadratic, 7-constant, 8-cosine-tau)",
    )
    p.add_argument("--format", choices=("table", "md", "json"), default="table")
    p.add_argument(
        "--model",
        choices=("hmil", "hmil-pc"),
        default="hmil",
        help="hmil (the paper's shared heads, default) or hmil-pc (per-class heads, not in the paper)",
    )


def _add_compare(sub, subs: dict[str, argparse.ArgumentParser]) -> None:  # noqa: ANN001 - argparse's private type
    """``benchmark compare``."""
    p = subs["compare"] = sub.add_parser(
        "compare",
        help="methods × metrics table from MLflow",
        description="Mean ± std over folds per method from MLflow, best in bold, "
        "Wilcoxon signed-rank p-value vs the best method.",
        epilog=EPILOG,
    )
    p.add_argument("--dataset", default="panda-sim", help="dataset (= experiment name unless --experiment)")
    add_tracking_options(p)
    p.add_argument("--level", choices=("fine", "coarse", "coarse_head"), default="fine", help="label level")
    p.add_argument("--format", choices=("table", "md", "latex", "csv", "json"), default="table")
    p.add_argument("--output", default=None, help="write the table to this file instead of stdout")
    p.add_argument("--plot", default=None, help="save a figure of the main metrics (png/pdf/svg)")
    p.add_argument("--per-class", action="store_true", help="per-class metrics instead of overall ones")
    p.add_argument("--methods", default=None, help="comma-separated subset of methods")
    p.add_argument("--split-digest", default=None, help="select runs on this split digest (prefix ok)")
    p.add_argument(
        "--primary", default="auc", help="metric used for the paired test vs the best (default auc)"
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        metavar="B",
        help="bootstrap resamples for the 95%% CI of the primary metric on pooled out-of-fold predictions "
        "(default %(default)s, about 10 s per method on a 2-core CPU; 0 = no CI)",
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default %(default)s)")
    add_common(p)


def _add_status(sub, subs: dict[str, argparse.ArgumentParser]) -> None:  # noqa: ANN001 - argparse's private type
    """``benchmark status``."""
    p = subs["status"] = sub.add_parser(
        "status",
        help="which cells (method × fold) are finished, running, failed or pending, from MLflow",
        description="Read an experiment's parent and fold runs from MLflow and show, per method, which folds "
        "are finished, running, failed, killed or still pending: follows runs started anywhere (another "
        "terminal, worker processes, a SLURM array submitted without --wait).",
        epilog=EPILOG,
    )
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument(
        "--dataset", default=None, help="the dataset (its experiment, as `benchmark run` names it)"
    )
    g.add_argument("--experiment", default=None, help="an MLflow experiment by name")
    add_tracking_options(p, experiment=None)
    p.add_argument("--format", choices=("table", "json"), default="table", help="output (default table)")
    add_common(p)
