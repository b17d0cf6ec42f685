"""``benchmark validate``: handler (the work is in `benchmark.reproduce.runner`), rendered with rich."""

from __future__ import annotations

import argparse
import shlex

from rich.table import Table

from benchmark.cli.commands import console
from benchmark.core.errors import BenchmarkError

__all__ = ["cmd_validate"]


def cmd_validate(args: argparse.Namespace) -> int:
    from benchmark.cli.progress import RichObserver
    from benchmark.reproduce.runner import protocol_for, run_validation

    if args.threads is not None:
        if args.threads < 1:
            raise BenchmarkError(f"--threads must be ≥ 1, got {args.threads}.")
        import torch

        torch.set_num_threads(args.threads)
    names = lambda text: [x.strip() for x in text.split(",") if x.strip()]  # noqa: E731
    command_line = "benchmark " + shlex.join(getattr(args, "argv", None) or ["validate"])
    with RichObserver(console) as observer:
        report = run_validation(
            names(args.datasets),
            names(args.models),
            tracking_uri=args.tracking_uri,
            output_md=args.output,
            protocol=protocol_for(quick=args.quick, repeats=args.repeats),
            folds=args.fold,
            context_folds=args.context_folds,
            splits_root=args.splits_dir,
            command_line=command_line,
            note=args.note,
            report_only=args.report_only,
            observer=None if args.report_only else observer,
        )
    table = Table(title=f"validation ({report.protocol.name} protocol)")
    for column in ("dataset", "model", "folds", "accuracy", "AUC", "band", "verdict"):
        table.add_column(column)
    for r in report.rows:
        band = f"{r.band[0]:.2f}–{r.band[1]:.2f}" if r.band else "–"
        verdict = (
            "no band" if r.band is None else ("PASS" if r.in_band else "FAIL") if r.checked else "context"
        )
        table.add_row(
            r.dataset,
            r.model,
            f"{r.folds_run}/{r.folds_total}",
            f"{r.acc_mean:.3f} ± {r.acc_std:.3f}",
            f"{r.auc_mean:.3f}",
            band,
            verdict,
        )
    console.print(table)
    if report.output is not None:
        console.print(f"wrote {report.output}")
    for line in report.failures:
        console.print(f"[red]out of band:[/red] {line}")
    return report.exit_code
