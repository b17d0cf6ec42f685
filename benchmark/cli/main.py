"""``benchmark`` command line: a name → handler map; ``main(argv)`` returns the exit code.

Exit codes: 0 ok, 2 user error (one line, plus the subcommand's usage), 1 unexpected (traceback with --debug).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from benchmark import __version__
from benchmark.cli.args import build_parser
from benchmark.core.errors import BenchmarkError

__all__ = ["main"]

log = logging.getLogger("benchmark")


def _handlers() -> dict[str, Callable[[argparse.Namespace], int]]:
    # Imported lazily so `benchmark --help` stays fast (torch/mlflow imports take seconds).
    from benchmark.cli import commands as c
    from benchmark.cli.data_stats import cmd_data_stats
    from benchmark.cli.tune import cmd_tune
    from benchmark.cli.validate import cmd_validate

    return {
        "run": c.cmd_run,
        "tune": cmd_tune,
        "ablate": c.cmd_ablate,
        "compare": c.cmd_compare,
        "datasets": c.cmd_datasets,
        "models": c.cmd_models,
        "splits make": c.cmd_splits_make,
        "splits show": c.cmd_splits_show,
        "data check": c.cmd_data_check,
        "data pack": c.cmd_data_pack,
        "data stats": lambda args: cmd_data_stats(args, c.console),
        "perf": c.cmd_perf,
        "validate": cmd_validate,
    }


def _setup_logging(verbose: bool) -> None:
    from rich.console import Console
    from rich.logging import RichHandler

    # Logs go to stderr so that stdout carries only the command's output (`--format json | jq` works).
    handler = RichHandler(
        console=Console(stderr=True), show_path=False, show_time=False, markup=False, rich_tracebacks=False
    )
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        handlers=[handler],
        format="%(message)s",
        force=True,
    )
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
    if key not in _handlers():
        subparsers[args.command].print_help()
        return 2
    _setup_logging(args.verbose)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        return _handlers()[key](args)
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
