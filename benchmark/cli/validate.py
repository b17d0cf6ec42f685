"""``benchmark validate``: handler (the work is in `benchmark.reproduce.runner`), rendered with rich."""

from __future__ import annotations

import argparse

from rich.table import Table

from benchmark import api
from benchmark.cli.progress import RichObserver
from benchmark.cli.render import console
from benchmark.cli.requests import check_tracking, command_line, names
from benchmark.cli.run import live
from benchmark.core.config import CVConfig, TrackingConfig
from benchmark.reproduce.runner import ValidationRequest, protocol_for

__all__ = ["cmd_validate", "validation_request"]


def cmd_validate(args: argparse.Namespace) -> int:
    request = validation_request(args)
    with live(RichObserver(console)) as observer:
        report = api.reproduce(request, observer)
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


def validation_request(args: argparse.Namespace) -> ValidationRequest:
    """``benchmark validate`` options as a `ValidationRequest`."""
    check_tracking(args.tracking_uri)  # a malformed URI is refused before hours of training
    return ValidationRequest(
        datasets=names(args.datasets),
        models=names(args.models),
        protocol=protocol_for(quick=args.quick, repeats=args.repeats),
        tracking=TrackingConfig(uri=args.tracking_uri),
        cv=CVConfig(splits_dir=args.splits_dir),
        folds=args.fold,
        threads=args.threads,
        output=args.output,
        context_folds=args.context_folds,
        command_line=command_line(args) or "benchmark validate",
        note=args.note,
        report_only=args.report_only,
    )
