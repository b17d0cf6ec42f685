"""``benchmark validate``: ABMIL on the classical MIL sets against Ilse et al. (2018), written to docs/validation.md.

Protocol (datasets-and-formats.md D1, baselines.md §2.4): stratified 10-fold CV repeated 5 times
(``CVConfig(n_folds=10, repeats=5)``), a validation part carved from every training part for checkpoint
selection and early stopping (the harness's rule: the test fold is evaluated once, after selection),
features z-scored with training-part instance statistics. Every model runs through the ordinary harness
(`benchmark.run.runner.run_benchmark`, MLflow experiment ``validate-<dataset>``; resumable) and its finished
fold runs are read back from MLflow.

Check: ABMIL plain (``abmil-plain``, Ilse's "Attention") and gated (``abmil``) must reach a mean test
accuracy inside the acceptance band of every banded dataset (MUSK1, MUSK2, Elephant; UCSB has no band,
see `UNBANDED_REASON`). Exit codes: `EXIT_OK` (0) all checked rows in band, `EXIT_OUT_OF_BAND` (3) at
least one outside; user errors raise `BenchmarkError` (exit 2 in the CLI).

Example:
    >>> report = run_validation(["musk1"], ["abmil-plain", "abmil"], tracking_uri="sqlite:///v.db",
    ...                         output_md="docs/validation.md")  # doctest: +SKIP
    >>> report.exit_code  # doctest: +SKIP
    0
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from mlflow.tracking import MlflowClient

from benchmark.core.config import DataConfig
from benchmark.core.errors import BenchmarkError, ConfigError
from benchmark.data import load_dataset
from benchmark.data.classical import CLASSICAL
from benchmark.reproduce.doc import render_markdown
from benchmark.reproduce.protocol import (
    BANDS,
    CHECKED_MODELS,
    DEFAULT_DATASETS,
    DEFAULT_MODELS,
    FULL_PROTOCOL,
    QUICK_PROTOCOL,
    ValidationProtocol,
)
from benchmark.reproduce.results import (
    EXIT_OK,
    EXIT_OUT_OF_BAND,
    ModelResult,
    ValidationReport,
    read_result,
    recorded_parent,
)
from benchmark.run.resolve import expand_models
from benchmark.run.runner import RunObserver, RunRequest, run_benchmark
from benchmark.tracking.store import configure

__all__ = [
    "EXIT_OK",
    "EXIT_OUT_OF_BAND",
    "FULL_PROTOCOL",
    "QUICK_PROTOCOL",
    "LogObserver",
    "ModelResult",
    "ValidationReport",
    "protocol_for",
    "render_markdown",
    "run_validation",
]

log = logging.getLogger(__name__)


def run_validation(
    datasets: Sequence[str] = DEFAULT_DATASETS,
    models: Sequence[str] = DEFAULT_MODELS,
    *,
    tracking_uri: str | None = None,
    output_md: str | Path | None = "docs/validation.md",
    quick: bool = False,
    protocol: ValidationProtocol | None = None,
    bands: Mapping[str, tuple[float, float]] | None = None,
    folds: Sequence[int] | None = None,
    context_folds: int | None = None,
    splits_root: str = "splits",
    command_line: str | None = None,
    note: str | None = None,
    report_only: bool = False,
    observer: RunObserver | None = None,
) -> ValidationReport:
    """Run every model on every classical dataset under the protocol, then write the validation document.

    Args:
        datasets: names from `benchmark.data.classical.CLASSICAL`.
        models: registered model names (``abmil-plain`` and ``abmil`` are the checked ones).
        tracking_uri: MLflow store (None: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db); experiments are ``validate-<dataset>`` (``-quick`` in quick mode).
            Re-running resumes: finished folds are read back, not retrained.
        output_md: where to write the Markdown document (None: do not write).
        quick: `QUICK_PROTOCOL` (5-fold × 1, 3 epochs) — a smoke test, labelled as such.
        protocol: explicit protocol (overrides ``quick``).
        bands: dataset → (low, high) accuracy band (default `BANDS`).
        folds: run only these fold columns (the document then says PARTIAL).
        context_folds: run the unchecked (context) models on the first this-many fold columns only, e.g.
            10 = the first repeat, to bound compute; checked models always get ``folds`` (all by default).
            Context rows show ``10/50`` in their Folds column; the check itself is unaffected.
        splits_root: folder of the split files (``<root>/<dataset>/kfold-k10x5-seed0.csv``).
        command_line: the command shown in the document.
        note: free text added to the document's Timings section (e.g. the machine and its load).
        report_only: train nothing; read the recorded runs matching the protocol (see `_recorded_parent`)
            and write the document, e.g. after the harness gained config fields since the run.
        observer: progress hooks passed to `run_benchmark`.

    Returns:
        A `ValidationReport`; ``exit_code`` is `EXIT_OUT_OF_BAND` when a checked ABMIL row misses its band.

    Raises:
        ConfigError: unknown dataset or empty lists; UnknownNameError: unknown model; DataError: the
            ``mil`` CSVs are missing or altered.
    """
    proto = protocol or (QUICK_PROTOCOL if quick else FULL_PROTOCOL)
    if context_folds is not None and context_folds < 1:
        raise ConfigError(f"validate --context-folds must be ≥ 1, got {context_folds}.")
    bands = dict(BANDS if bands is None else bands)
    unknown = [d for d in datasets if d not in CLASSICAL]
    if unknown or not datasets:
        raise ConfigError(
            f"validate --datasets: {unknown or 'none given'}; choose from {', '.join(CLASSICAL)}."
        )
    models = expand_models(models)  # unknown names fail here, before any training
    tracking_uri = configure(tracking_uri)  # after every name check: a user error leaves no store behind
    client = MlflowClient(tracking_uri=tracking_uri) if report_only else None
    started = time.perf_counter()
    rows: list[ModelResult] = []
    experiments: dict[str, str] = {}
    for dataset in datasets:
        experiment = f"validate-{dataset}" + ("-quick" if proto.name == "quick" else "")
        experiments[dataset] = experiment
        bags = None if report_only else load_dataset(DataConfig(name=dataset))  # once for every model
        for model in models:
            if report_only:
                try:
                    parent = recorded_parent(client, experiment, dataset, model, proto, splits_root)
                except BenchmarkError:
                    if model in CHECKED_MODELS:
                        raise
                    log.warning(
                        "validate --report-only: no recorded %s run on %s; row omitted", model, dataset
                    )
                    continue
                rows.append(read_result(client, parent, dataset, model, proto, bands))
                continue
            log.info("validate %s / %s (%s protocol)", dataset, model, proto.name)
            model_folds = folds
            if context_folds is not None and model not in CHECKED_MODELS:
                model_folds = [
                    f for f in (folds if folds is not None else range(context_folds)) if f < context_folds
                ]
            request = RunRequest(
                models=[model],
                data=DataConfig(name=dataset),
                cv=proto.cv,
                seed=proto.seed,
                train_overrides=dict(proto.train),
                model_overrides=dict(proto.model.get(model, {})),
                tracking_uri=tracking_uri,
                experiment=experiment,
                splits_root=splits_root,
                folds=model_folds,
            )
            summary = run_benchmark(request, observer, bags=bags)
            client = MlflowClient(tracking_uri=summary.tracking_uri)
            rows.append(read_result(client, summary.parents[model], dataset, model, proto, bands))
    failures = [
        f"{r.dataset}/{r.model}: accuracy {r.acc_mean:.3f} not in [{r.band[0]:.2f}, {r.band[1]:.2f}]"
        for r in rows
        if r.checked and r.band is not None and not r.in_band
    ]
    # Complete = every checked row ran the whole protocol; context rows may be bounded by ``context_folds``.
    complete = all(r.folds_run == r.folds_total for r in rows if r.model in CHECKED_MODELS)
    report = ValidationReport(
        rows=rows,
        protocol=proto,
        complete=complete,
        failures=failures,
        exit_code=EXIT_OUT_OF_BAND if failures else EXIT_OK,
        markdown="",
        output=None,
        wall_seconds=time.perf_counter() - started,
        experiments=experiments,
    )
    report.markdown = render_markdown(
        report, bands=bands, tracking_uri=tracking_uri, command_line=command_line, note=note
    )
    if output_md is not None:
        report.output = Path(output_md)
        report.output.parent.mkdir(parents=True, exist_ok=True)
        report.output.write_text(report.markdown, encoding="utf-8")
        log.info("wrote %s", report.output)
    for line in failures:
        log.warning("out of band: %s", line)
    return report


class LogObserver(RunObserver):
    """Logs one line per finished fold (test accuracy, epochs, seconds): progress for long unattended runs."""

    def on_fold_end(self, model: str, fold: int, outcome) -> None:  # noqa: ANN001 - FoldOutcome
        acc = outcome.test.flat("test").get("test.fine.accuracy", math.nan)
        log.info(
            "%s fold %d: test acc %.3f, %d epochs (best %d), %.1f s",
            model,
            fold,
            acc,
            outcome.epochs_run,
            outcome.best_epoch,
            outcome.seconds,
        )


def protocol_for(*, quick: bool, repeats: int | None) -> ValidationProtocol:
    """`FULL_PROTOCOL`, `QUICK_PROTOCOL`, or a "reduced" copy with other repeats (the report says so)."""
    proto = QUICK_PROTOCOL if quick else FULL_PROTOCOL
    if repeats is not None and repeats != proto.repeats:
        if repeats < 1:
            raise ConfigError(f"validate --repeats must be ≥ 1, got {repeats}.")
        proto = dataclasses.replace(proto, repeats=repeats, name="reduced")
    return proto
