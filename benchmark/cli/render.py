"""The CLI's console and its rich renderings of `data check` reports and `perf` results."""

from __future__ import annotations

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


def render_perf(console: Console, report, *, markdown: bool = False) -> None:  # noqa: ANN001 - a PerfReport
    """The `benchmark perf` table: a header naming the measured regime, one row per (model, path); a rich
    table, or Markdown text (for docs/results/perf.md) with ``markdown``."""
    g = report.regime
    title = (
        f"benchmark perf, bags {g['bags']} ({g['source']}): {g['slides']} slides ({g['train_slides']} train / "
        f"{g['val_slides']} val), {g['bag_min']}/{g['bag_median']:g}/{g['bag_max']} instances per bag "
        f"(min/median/max), D={g['dim']}, {g['dtype']}; {g['epochs']} timed epoch(s) after {g['warmup']}; "
        f"{g['threads']} thread(s), {g['device']}, torch {g['torch']}"
    )
    cuda = any(r["peak_cuda_mib"] is not None for r in report.rows)
    cols = ["model", "path", "batch", "epoch s", "train s", "val s", "train slides/s"]
    cols += ["speed vs reference", "speed vs floor", "peak RSS MiB"] + (["peak CUDA MiB"] if cuda else [])
    cells = []
    for r in report.rows:
        row = [r["model"], r["path"], str(r["batch_size"]), f"{r['epoch_s']:.2f}", f"{r['train_s']:.2f}"]
        row += [f"{r['val_s']:.2f}", f"{r['train_slides_per_s']:.1f}"]
        row += [f"×{r['speed_vs_reference']:.2f}", f"×{r['speed_vs_floor']:.2f}", f"{r['peak_rss_mib']:.0f}"]
        cells.append(row + ([f"{r['peak_cuda_mib']:.0f}"] if cuda else []))
    if markdown:
        align = ["---" if c in ("model", "path") else "---:" for c in cols]
        lines = [f"**{title}**", "", "| " + " | ".join(cols) + " |", "|" + "|".join(align) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)
        return
    table = Table(title=title)
    for c in cols:
        table.add_column(c, justify="left" if c in ("model", "path") else "right")
    for row in cells:
        table.add_row(*row)
    console.print(table)
