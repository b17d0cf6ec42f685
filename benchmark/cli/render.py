"""The CLI's console and its rich renderings of `data check` reports and `perf` results."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

__all__ = ["console", "emit", "render_check", "render_perf"]

console = Console()
if not console.is_terminal:  # piped or captured: do not squeeze tables into 80 columns
    console = Console(width=160)


def emit(text: str, output: str | None) -> None:
    """Print ``text`` to stdout, or write it to ``output`` and say so."""
    if output:
        Path(output).write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")
    else:
        print(text)


def render_check(console: Console, report) -> None:
    for level, counts in report.counts.items():
        table = Table(title=f"{level} classes")
        table.add_column("class")
        table.add_column("slides", justify="right")
        for name, n in counts.items():
            table.add_row(str(name), str(int(n)))
        console.print(table)
    sizes = Table(title="bag sizes (instances per slide)")
    for key in report.bag_sizes:
        sizes.add_column(key, justify="right")
    sizes.add_row(*[f"{v:,.1f}" if isinstance(v, float) else f"{v:,}" for v in report.bag_sizes.values()])
    console.print(sizes)
    for w in getattr(report, "warnings", [])[:20]:
        console.print(f"[yellow]warning:[/yellow] {w}", highlight=False)
    if report.ok:
        console.print("[green]all slides valid[/green]")
    else:
        console.print(f"[red]{len(report.problems)} problem(s):[/red]")
        for p in report.problems[:50]:
            console.print(f"  - {p}", highlight=False)
        if len(report.problems) > 50:
            console.print(f"  … and {len(report.problems) - 50} more (use --format json for all)")


def render_perf(console: Console, rows: Sequence[dict]) -> None:
    table = Table(title="throughput: batched+preloaded vs reference-style loop (batch 1, re-read files)")
    cols = ["model", "path", "train slides/s", "eval slides/s", "peak RAM MiB", "train ×", "eval ×"]
    for c in cols:
        table.add_column(c, justify="right" if c not in ("model", "path") else "left")
    for r in rows:
        table.add_row(
            r["model"],
            r["path"],
            f"{r['train_slides_per_s']:.1f}",
            f"{r['eval_slides_per_s']:.1f}",
            f"{r['peak_ram_mib']:.0f}",
            f"{r['train_speedup']:.1f}" if r.get("train_speedup") else "",
            f"{r['eval_speedup']:.1f}" if r.get("eval_speedup") else "",
        )
    console.print(table)
