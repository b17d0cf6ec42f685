"""``benchmark`` command line: a name → handler map; ``main(argv)`` returns the exit code.

Exit codes: 0 ok, 2 user error (one line, plus the subcommand's usage), 1 unexpected (traceback with --debug).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.logging import RichHandler

from benchmark import __version__
from benchmark.cli.args import build_parser
from benchmark.core.errors import BenchmarkError

__all__ = ["main"]

log = logging.getLogger("benchmark")


# command → (module, handler). Command modules are imported only when their command runs: they import torch,
# mlflow and optuna (seconds), and `benchmark --help` must not pay for that.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("benchmark.cli.run", "cmd_run"),
    "ablate": ("benchmark.cli.run", "cmd_ablate"),
    "tune": ("benchmark.cli.tune", "cmd_tune"),
    "compare": ("benchmark.cli.compare", "cmd_compare"),
    "status": ("benchmark.cli.status", "cmd_status"),
    "heatmap": ("benchmark.cli.heatmap", "cmd_heatmap"),
    "datasets": ("benchmark.cli.catalog", "cmd_datasets"),
    "models": ("benchmark.cli.catalog", "cmd_models"),
    "splits make": ("benchmark.cli.data", "cmd_splits_make"),
    "splits show": ("benchmark.cli.data", "cmd_splits_show"),
    "data check": ("benchmark.cli.data", "cmd_data_check"),
    "data pack": ("benchmark.cli.data", "cmd_data_pack"),
    "data stats": ("benchmark.cli.data", "cmd_data_stats"),
    "perf": ("benchmark.cli.perf", "cmd_perf"),
    "validate": ("benchmark.cli.validate", "cmd_validate"),
}


def _handler(key: str) -> Callable[[argparse.Namespace], int]:
    module, name = COMMANDS[key]
    return getattr(importlib.import_module(module), name)


def _setup_logging(verbose: bool) -> None:
    # Logs go to stderr so that stdout carries only the command's output (`--format json | jq` works).
    err = Console(stderr=True)
    if err.is_terminal:
        handler: logging.Handler = RichHandler(
            console=err, show_path=False, show_time=False, markup=False, rich_tracebacks=False
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:  # piped or in a file: one plain line per record, never wrapped or padded to a console width
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)-8s %(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("benchmark").setLevel(logging.INFO)
    for noisy in ("mlflow", "alembic", "urllib3", "matplotlib", "optuna"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbose else logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    parser, subparsers = build_parser(__version__)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # shown in reports written by the command
    if args.command is None:
        parser.print_help()
        return 2
    key = args.command if getattr(args, "action", None) is None else f"{args.command} {args.action}"
    if key not in COMMANDS:
        subparsers[args.command].print_help()
        return 2
    _setup_logging(args.verbose)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # With a tracking server MLflow prints "View run … at: URL" for every run it ends; stdout carries only
    # the command's output (the run command prints the UI link itself). Workers inherit the setting.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    try:
        return _handler(key)(args)
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(f"(see `benchmark {key} --help`)", file=sys.stderr)
        if args.debug:
            raise
        return exc.exit_code
    except KeyboardInterrupt:
        print(
            "interrupted; unfinished runs were marked KILLED. Re-run the same command to resume.",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place unexpected errors are turned into exit 1
        if args.debug:
            raise
        print(
            f"unexpected error: {type(exc).__name__}: {exc} (re-run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
