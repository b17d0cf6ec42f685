"""The experiment's overview: every method's fine and coarse AUC with a bootstrap 95 % CI, as one figure and a
Markdown table, refreshed after each ``benchmark run`` on the experiment.

It lives in a run of its own (tag ``benchmark.role = overview``, name ``overview``: MLflow experiments hold no
artifacts) as ``figures/auc_overview.png`` and ``overview.md``; the table is also the experiment's
description (``mlflow.note.content``), which the MLflow UI shows above the runs.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from mlflow.tracking import MlflowClient

from benchmark.compare.comparison import Comparison, compare
from benchmark.compare.plot import DPI, method_colours, new_figure
from benchmark.core.errors import BenchmarkError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["OVERVIEW_BOOTSTRAP", "overview_figure", "overview_markdown", "update_overview"]

log = logging.getLogger(__name__)

#: Resamples of the overview CIs: fewer than `benchmark compare` (1000), since the overview is refreshed
#: after every run; the percentile bounds move by about ±0.005 AUC between seeds at B = 200.
OVERVIEW_BOOTSTRAP = 200
_LEVELS = ("fine", "coarse")
_ROLE = "overview"


def _comparisons(tracking_uri: str, experiment: str, split_digest: str | None, n_boot: int) -> dict:
    out: dict[str, Comparison] = {}
    for level in _LEVELS:
        try:
            out[level] = compare(
                tracking_uri,
                experiment,
                level=level,
                metrics=["auc"],
                split_digest=split_digest,
                n_boot=n_boot,
            )
        except BenchmarkError as exc:  # e.g. a flat dataset has no coarse level
            log.debug("overview: no %s comparison: %s", level, exc)
    return out


def _row(cmp: Comparison, method: str) -> dict[str, float]:
    row = cmp.table[(cmp.table["method"] == method) & (cmp.table["metric"] == "auc")]
    if row.empty:
        return {}
    return {k: float(row.iloc[0][k]) for k in ("mean", "std", "pooled", "ci_low", "ci_high", "n")}


def _cell(r: dict[str, float]) -> str:
    if not r or not math.isfinite(r.get("mean", math.nan)):
        return "–"
    text = f"{r['mean']:.3f} ± {r['std']:.3f}" if math.isfinite(r["std"]) else f"{r['mean']:.3f}"
    if math.isfinite(r.get("ci_low", math.nan)):
        text += f" ({r['pooled']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}])"
    return text


def overview_markdown(cmps: dict[str, Comparison]) -> str:
    """Methods (best fine AUC first) × levels: mean ± std over folds, then pooled AUC [95 % CI]."""
    first = next(iter(cmps.values()))
    levels = list(cmps)
    ranking = ", ".join(
        f"{m} {r['mean']:.3f}" for m in first.methods if (r := _row(first, m)) and math.isfinite(r["mean"])
    )
    lines = [
        # MLflow shows the experiment description folded to its first line: the ranking comes first.
        f"**{first.experiment}** · {first.level} AUC, mean over folds: {ranking}",
        "",
        f"Macro one-vs-rest AUC of every method (newest config each) on split `{(first.split_digest or '?')[:12]}`:",
        "",
        "| method | " + " | ".join(f"{lv} AUC" for lv in levels) + " |",
        "|---" * (len(levels) + 1) + "|",
    ]
    for method in first.methods:
        lines.append(f"| {method} | " + " | ".join(_cell(_row(cmps[lv], method)) for lv in levels) + " |")
    lines += [
        "",
        "mean ± std over folds (the comparison tables' number), then in brackets the AUC of the pooled "
        f"out-of-fold predictions with its percentile bootstrap 95 % CI (B = {first.n_boot}, slides "
        "resampled within class). Figure: the `overview` run's `figures/auc_overview.png`; tests: "
        "`benchmark compare`.",
    ]
    return "\n".join(lines)


def _panel(ax: Axes, cmp: Comparison, order: list[str], colours: dict[str, str]) -> None:
    folds = cmp.folds[cmp.folds["metric"] == "auc"]
    for i, method in enumerate(order):
        r = _row(cmp, method)
        values = folds.loc[folds["method"] == method, "value"].dropna()
        ax.scatter(values, [i] * len(values), marker="|", s=60, color="0.45", lw=1, zorder=2)
        if r and math.isfinite(r.get("ci_low", math.nan)):
            ax.errorbar(
                r["pooled"], i, xerr=[[r["pooled"] - r["ci_low"]], [r["ci_high"] - r["pooled"]]], fmt="o",
                ms=6.5, color=colours[method], mec="white", mew=0.8, elinewidth=2, capsize=3, zorder=3,
            )  # fmt: skip
            ax.annotate(
                f"{r['pooled']:.3f}", (r["pooled"], i), xytext=(0, 7), textcoords="offset points",
                ha="center", va="bottom", fontsize=8, color="0.25",
            )  # fmt: skip
        if r and math.isfinite(r.get("mean", math.nan)):
            ax.scatter(
                r["mean"], i, marker="D", s=34, facecolor="white", edgecolor=colours[method], lw=1.4, zorder=4
            )
    ax.axvline(0.5, color="0.6", lw=0.8, ls="--", zorder=1)
    ax.set_yticks(range(len(order)), order)
    ax.set_ylim(len(order) - 0.5, -0.5)
    ax.set_title(f"{cmp.level} level", fontsize=11)
    ax.set_xlabel("macro one-vs-rest AUC")
    ax.grid(axis="x", lw=0.4, alpha=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def overview_figure(cmps: dict[str, Comparison]) -> Figure:
    """One panel per level, methods sorted by fine AUC (best on top): pooled AUC with its bootstrap 95 % CI
    (point and bar) and every fold's AUC (grey ticks)."""
    first = next(iter(cmps.values()))
    order = list(first.methods)
    colours = method_colours(order)
    fig = new_figure(1.6 + 0.075 * max(map(len, order)) + 3.4 * len(cmps), 1.5 + 0.38 * len(order))
    axes = fig.subplots(1, len(cmps), sharey=True, squeeze=False)[0]
    for ax, cmp in zip(axes, cmps.values(), strict=True):
        _panel(ax, cmp, order, colours)
    fig.suptitle(f"{first.experiment} · macro AUC of every method (best mean over folds on top)", fontsize=12)
    from matplotlib.lines import Line2D

    handles = [
        Line2D(
            [],
            [],
            marker="o",
            color="0.2",
            ls="-",
            lw=2,
            label=f"pooled out-of-fold, bootstrap 95 % CI (B = {first.n_boot})",
        ),
        Line2D(
            [], [], marker="D", mfc="white", mec="0.2", ls="", label="mean over folds (the tables' number)"
        ),
        Line2D([], [], marker="|", color="0.45", ls="", ms=10, label="one fold"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False, fontsize=9.5)
    return fig


def update_overview(
    tracking_uri: str, experiment: str, *, split_digest: str | None = None, n_boot: int = OVERVIEW_BOOTSTRAP
) -> str | None:
    """Recompute and log the overview (figure, ``overview.md``, experiment description); its run id, or None
    when the experiment has no comparable runs yet."""
    cmps = _comparisons(tracking_uri, experiment, split_digest, n_boot)
    if not cmps:
        return None
    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    found = client.search_runs(
        [exp.experiment_id], f"tags.`benchmark.role` = '{_ROLE}'", max_results=1, order_by=["start_time ASC"]
    )
    run_id = (
        found[0].info.run_id
        if found
        else client.create_run(exp.experiment_id, tags={"benchmark.role": _ROLE}, run_name=_ROLE).info.run_id
    )
    note = overview_markdown(cmps)
    fig = overview_figure(cmps)
    client.log_figure(run_id, fig, "figures/auc_overview.png", save_kwargs={"dpi": DPI})
    client.log_text(run_id, note, "overview.md")
    client.set_tag(run_id, "mlflow.note.content", note)
    client.set_experiment_tag(exp.experiment_id, "mlflow.note.content", note)
    client.set_terminated(run_id, "FINISHED")
    return run_id
