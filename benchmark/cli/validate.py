"""``benchmark validate``: handler (the work is in `benchmark.reproduce.runner`), rendered with rich."""

from __future__ import annotations

import argparse

from rich.table import Table

from benchmark import api
from benchmark.cli.progress import RichObserver
from benchmark.cli.render import console
from benchmark.cli.requests import validation_request

__all__ = ["cmd_validate"]


def cmd_validate(args: argparse.Namespace) -> int:
    request = validation_request(args)
    with RichObserver(console) as observer:
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
