"""The terminal table of a `ComparisonTable` (rich), fitted to the console width.

Method names are never truncated and cells never wrapped. When the table is wider than the console,
whole columns are left out, least informative first (config hash, optimiser steps, folds, then the
non-primary metrics from the right), and the footer names what was left out; the text formats
(``--format md|csv|json|latex``) always carry every column. The caption and the statistics footer are
printed below the table as left-aligned paragraphs wrapped at the console width, not squeezed into it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rich.console import Group
from rich.table import Table
from rich.text import Text

from benchmark.compare.footer import caption, footer
from benchmark.compare.render import (
    cell_text,
    folds_per_method,
    method_rows,
    p_header,
    p_text,
    primary_p,
    steps_text,
)
from benchmark.compare.runs import short
from benchmark.compare.table import ComparisonTable

__all__ = ["HEADERS", "to_rich_table"]

#: Short column headers: the terminal has little room; the text formats keep the metric keys.
HEADERS = {
    "accuracy": "acc",
    "balanced_accuracy": "bal. acc",
    "specificity": "spec.",
    "sensitivity": "sens.",
    "auc": "AUC",
    "f1_macro": "F1 macro",
    "f1_weighted": "F1 wtd",
    "qwk": "QWK",
    "hierarchy_consistency": "hier. cons.",
}
_DROP_FIRST = ("config", "steps", "folds")  # then non-primary metrics, right to left


@dataclass
class _Column:
    name: str
    header: str
    justify: str
    cells: list[Text] = field(default_factory=list)

    @property
    def width(self) -> int:
        return max([len(self.header), *(len(c.plain) for c in self.cells)])


def _columns(cmp: ComparisonTable) -> list[_Column]:
    folds, p = folds_per_method(cmp), primary_p(cmp)
    configs = cmp.table.groupby("method")["config_hash"].first()
    cols = [
        _Column("method", "method", "left"),
        _Column("config", "config", "left"),
        _Column("folds", "folds", "right"),
        _Column("steps", "steps", "right"),
        *(_Column(m, HEADERS.get(m, m), "right") for m in cmp.metrics),
        _Column("p", p_header(cmp).replace(cmp.primary, HEADERS.get(cmp.primary, cmp.primary)), "right"),
    ]
    for method, cells in method_rows(cmp, cmp.table, list(cmp.metrics), "metric"):
        texts = [
            Text(method),
            Text(short(str(configs[method]))),
            Text(str(folds.get(method, 0))),
            Text(steps_text(cmp, method)),
            *(Text(cell_text(mu, sd), style="bold" if best else "") for mu, sd, best in cells),
            Text(p_text(p.get(method, math.nan))),
        ]
        for col, text in zip(cols, texts, strict=True):
            col.cells.append(text)
    return cols


def _table_width(cols: list[_Column]) -> int:
    return 1 + sum(c.width + 3 for c in cols)  # a border and one space of padding on each side per column


def _fit(cmp: ComparisonTable, cols: list[_Column], width: int | None) -> tuple[list[_Column], list[str]]:
    """The columns that fit in ``width`` (all when None) and the names of those left out."""
    if width is None:
        return cols, []
    order = [*_DROP_FIRST, *(m for m in reversed(cmp.metrics) if m != cmp.primary)]
    dropped: list[str] = []
    for name in order:
        if _table_width(cols) <= width:
            break
        cols = [c for c in cols if c.name != name]
        dropped.append(HEADERS.get(name, name))
    return cols, dropped


def to_rich_table(cmp: ComparisonTable, width: int | None = None) -> Group:
    """The overall table (per-class tables are left to the text formats) and its footer.

    Args:
        cmp: the comparison.
        width: console columns to fit (``console.width``); None keeps every column.

    Returns:
        A renderable: the table, then the caption and footer lines.
    """
    cols, dropped = _fit(cmp, _columns(cmp), width)
    table = Table(title=f"{cmp.experiment} · {cmp.level}")
    for col in cols:
        table.add_column(col.header, justify=col.justify, no_wrap=True, min_width=col.width)
    for i in range(len(cmp.methods)):
        table.add_row(*(col.cells[i] for col in cols))
    notes = [caption(cmp), *(line.strip() for line in footer(cmp))]
    if dropped:
        notes.append(
            f"Left out to fit {width} columns: {', '.join(dropped)} (a wider terminal, or --format md, "
            "shows every column)."
        )
    return Group(table, *(Text(line) for line in notes))
