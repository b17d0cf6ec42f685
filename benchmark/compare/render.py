"""Text renderers of a `ComparisonTable`: JSON, Markdown, LaTeX, CSV, rich (figure: `benchmark.compare.plot`).

Text formats show ``mean ± std`` with 3 decimals, the best method per metric in bold and NaN as "–"
(``--`` in LaTeX, which typesets as the same en dash); JSON writes NaN as null.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from benchmark.compare.footer import caption, footer, test_summary
from benchmark.compare.runs import short
from benchmark.compare.table import ComparisonTable


def p_header(cmp) -> str:
    return f"p vs {cmp.reference} ({cmp.primary})" if cmp.reference else f"p ({cmp.primary})"


__all__ = [
    "DASH",
    "cell_text",
    "folds_per_method",
    "p_header",
    "p_text",
    "primary_p",
    "method_rows",
    "steps_text",
    "to_csv",
    "to_json",
    "to_latex",
    "to_markdown",
]

DASH = "–"


def _num(x: Any) -> float | None:
    """JSON-safe float: NaN/inf -> None."""
    x = float(x)
    return x if math.isfinite(x) else None


def cell_text(mean: float, std: float, pm: str = " ± ", dash: str = DASH) -> str:
    if not math.isfinite(mean):
        return dash
    return f"{mean:.3f}" + (f"{pm}{std:.3f}" if math.isfinite(std) else "")


def p_text(p: float, dash: str = DASH) -> str:
    if not math.isfinite(p):
        return dash
    return "<0.001" if p < 1e-3 else f"{p:.3g}"


def steps_text(cmp: ComparisonTable, method: str) -> str:
    """Mean optimiser steps per fold, rounded; "–" for runs that did not log them."""
    value = cmp.steps.get(method, math.nan)
    return f"{value:.0f}" if math.isfinite(value) else DASH


def folds_per_method(cmp: ComparisonTable) -> dict[str, int]:
    return cmp.folds.groupby("method")["fold"].nunique().to_dict()


def method_rows(
    cmp: ComparisonTable, summary: pd.DataFrame, columns: list[str], col: str
) -> list[tuple[str, list]]:
    """Per method: ``[(mean, std, best) per column]`` from a tidy summary, NaN where missing."""
    out = []
    for m in cmp.methods:
        sub = summary[summary["method"] == m].set_index(col)
        cells = [
            (sub.at[c, "mean"], sub.at[c, "std"], bool(sub.at[c, "best"]))
            if c in sub.index
            else (math.nan, math.nan, False)
            for c in columns
        ]
        out.append((m, cells))
    return out


def primary_p(cmp: ComparisonTable) -> dict[str, float]:
    sub = cmp.table[cmp.table["metric"] == cmp.primary]
    return dict(zip(sub["method"], sub["p_value"], strict=True))


def _per_class_blocks(cmp: ComparisonTable) -> list[tuple[str, list[str], pd.DataFrame]]:
    """``(metric, classes, rows-of-that-metric)`` for each per-class metric."""
    if cmp.per_class is None:
        return []
    blocks = []
    for metric, sub in cmp.per_class.groupby("metric", sort=False):
        classes = list(dict.fromkeys(sub["class"]))
        blocks.append((str(metric), classes, sub))
    return blocks


def to_json(cmp: ComparisonTable) -> str:
    """Schema: ``{experiment, level, split_digest, primary, metrics, methods: {method: {n_folds, optimizer_steps
    (mean per fold), config_hash,
    folds, metrics: {metric: {mean, std, n, p_value, p_value_nb, values}}, p_value_vs_best, p_nb_vs_best,
    ci95: {metric, estimate, low, high, n_slides, n_boot, n_finite, seed} | null}}, best: {metric: method},
    tests: {anchor, metric, n_folds, wilcoxon, corrected_t, bootstrap} (`benchmark.compare.footer`),
    per_class?: {method: {metric: {class: {mean, std, n, values}}}}, notes}``; ``values`` follow ``folds``.
    ``p_value`` is the Wilcoxon signed-rank p, ``p_value_nb`` the Nadeau–Bengio corrected t p.
    """
    methods: dict[str, Any] = {}
    p_primary = primary_p(cmp)
    for m in cmp.methods:
        f = cmp.folds[cmp.folds["method"] == m]
        fold_ids = sorted(int(x) for x in f["fold"].unique())
        t = cmp.table[cmp.table["method"] == m].set_index("metric")
        metrics = {}
        for metric in cmp.metrics:
            vals = f[f["metric"] == metric].set_index("fold")["value"].reindex(fold_ids)
            metrics[metric] = {
                "mean": _num(t.at[metric, "mean"]),
                "std": _num(t.at[metric, "std"]),
                "n": int(t.at[metric, "n"]),
                "p_value": _num(t.at[metric, "p_value"]),
                "p_value_nb": _num(t.at[metric, "p_nb"]),
                "values": [_num(v) for v in vals],
            }
        methods[m] = {
            "n_folds": len(fold_ids),
            "optimizer_steps": _num(cmp.steps.get(m, math.nan)),
            "config_hash": str(t["config_hash"].iloc[0]),
            "folds": fold_ids,
            "metrics": metrics,
            "p_value_vs_best": _num(p_primary.get(m, math.nan)),
            "p_nb_vs_best": _num(t.at[cmp.primary, "p_nb"]) if cmp.primary in t.index else None,
            "ci95": _ci_json(cmp, m),
        }
    doc: dict[str, Any] = {
        "experiment": cmp.experiment,
        "level": cmp.level,
        "split_digest": cmp.split_digest,
        "primary": cmp.primary,
        "reference": cmp.reference,
        "metrics": list(cmp.metrics),
        "methods": methods,
        "best": dict(cmp.best),
        "tests": test_summary(cmp),
    }
    if cmp.per_class is not None and cmp.per_class_folds is not None:
        pcf = cmp.per_class_folds
        per_class: dict[str, dict[str, dict[str, Any]]] = {m: {} for m in cmp.methods}
        for r in cmp.per_class.to_dict("records"):
            sel = pcf[
                (pcf["method"] == r["method"]) & (pcf["metric"] == r["metric"]) & (pcf["class"] == r["class"])
            ]
            per_class[r["method"]].setdefault(r["metric"], {})[r["class"]] = {
                "mean": _num(r["mean"]),
                "std": _num(r["std"]),
                "n": int(r["n"]),
                "values": [_num(v) for v in sel.sort_values("fold")["value"]],
            }
        doc["per_class"] = per_class
    doc["notes"] = list(cmp.notes)
    return json.dumps(doc, indent=2, allow_nan=False)


def _ci_json(cmp: ComparisonTable, method: str) -> dict[str, Any] | None:
    """``{metric, estimate, low, high, n_slides, n_boot, n_finite, seed}`` of the method's bootstrap CI."""
    ci = cmp.intervals.get(method)
    if ci is None:
        return None
    return {"metric": cmp.primary, **{k: _num(v) if isinstance(v, float) else v for k, v in vars(ci).items()}}


def _md_table(header: list[str], rows: list[list[str]], align: list[str]) -> str:
    esc: Callable[[str], str] = lambda s: s.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(map(esc, header)) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(lines)


def to_markdown(cmp: ComparisonTable) -> str:
    """Overall table (methods × metrics), then one methods × classes table per per-class metric."""
    bold = lambda s, b: f"**{s}**" if b and s != DASH else s  # noqa: E731
    n_folds, p = folds_per_method(cmp), primary_p(cmp)
    configs = cmp.table.groupby("method")["config_hash"].first()
    header = ["method", "config", "folds", "steps", *cmp.metrics, p_header(cmp)]
    rows = [
        [
            m,
            short(str(configs[m])),
            str(n_folds.get(m, 0)),
            steps_text(cmp, m),
            *(bold(cell_text(mu, sd), b) for mu, sd, b in cells),
            p_text(p.get(m, math.nan)),
        ]
        for m, cells in method_rows(cmp, cmp.table, list(cmp.metrics), "metric")
    ]
    parts = [f"*{caption(cmp)}*", "", _md_table(header, rows, ["---", "---"] + ["---:"] * (len(header) - 2))]
    parts += ["", *(f"- {line}" for line in footer(cmp))]
    for metric, classes, sub in _per_class_blocks(cmp):
        rows = [
            [m, *(bold(cell_text(mu, sd), b) for mu, sd, b in cells)]
            for m, cells in method_rows(cmp, sub, classes, "class")
        ]
        parts += [
            "",
            f"**per-class {metric} ({cmp.level})**",
            "",
            _md_table(["method", *classes], rows, ["---"] + ["---:"] * len(classes)),
        ]
    if cmp.notes:
        parts += ["", *(f"> {note}" for note in cmp.notes)]
    return "\n".join(parts) + "\n"


def _tex(s: str) -> str:
    repl = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
    }
    return "".join(repl.get(ch, ch) for ch in s)


def _tex_tabular(header: list[str], rows: list[list[str]], spec: str) -> list[str]:
    return [
        f"\\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(header) + r" \\",
        r"\midrule",
        *(" & ".join(r) + r" \\" for r in rows),
        r"\bottomrule",
        r"\end{tabular}",
    ]


def to_latex(cmp: ComparisonTable) -> str:
    """booktabs tabulars (needs ``\\usepackage{booktabs}``); best cells wrapped in ``\\textbf{}``."""

    def cell(mu: float, sd: float, b: bool) -> str:
        s = cell_text(mu, sd, pm=r" $\pm$ ", dash="--")
        return f"\\textbf{{{s}}}" if b and s != "--" else s

    n_folds, p = folds_per_method(cmp), primary_p(cmp)
    header = ["Method", "Folds", "Steps", *(_tex(m) for m in cmp.metrics), f"$p$ ({_tex(cmp.primary)})"]
    rows = [
        [
            _tex(m),
            str(n_folds.get(m, 0)),
            steps_text(cmp, m).replace(DASH, "--"),
            *(cell(*c) for c in cells),
            p_text(p.get(m, math.nan), dash="--"),
        ]
        for m, cells in method_rows(cmp, cmp.table, list(cmp.metrics), "metric")
    ]
    lines = [f"% {_tex(caption(cmp)).replace('±', '+/-')}"]
    lines += _tex_tabular(header, rows, "lrr" + "c" * len(cmp.metrics) + "r")
    lines += [f"% {_tex(line)}" for line in footer(cmp)]
    for metric, classes, sub in _per_class_blocks(cmp):
        rows = [[_tex(m), *(cell(*c) for c in cells)] for m, cells in method_rows(cmp, sub, classes, "class")]
        lines += ["", f"% per-class {_tex(metric)} ({_tex(cmp.level)})"]
        lines += _tex_tabular(["Method", *(_tex(c) for c in classes)], rows, "l" + "c" * len(classes))
    return "\n".join(lines) + "\n"


def to_csv(cmp: ComparisonTable) -> str:
    """Tidy rows; with per-class results a ``class`` column is added (empty for overall rows)."""
    df = cmp.table
    if cmp.per_class is not None:
        df = pd.concat([df.assign(**{"class": ""}), cmp.per_class], ignore_index=True)
        head = ["method", "config_hash", "metric", "class", "mean", "std", "n", "p_value", "p_nb", "n_pairs"]
        df = df[[*head, "best", "pooled", "ci_low", "ci_high"]]
    return df.to_csv(index=False, na_rep="", lineterminator="\n")
