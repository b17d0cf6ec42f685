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
    >>> request = ValidationRequest(datasets=["musk1"], models=["abmil-plain", "abmil"],
    ...                             tracking=TrackingConfig(uri="sqlite:///v.db"))  # doctest: +SKIP
    >>> report = run_validation(request)  # doctest: +SKIP
    >>> report.exit_code  # doctest: +SKIP
    0
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mlflow.tracking import MlflowClient

from benchmark.core.config import DataConfig, TrackingConfig
from benchmark.core.errors import BenchmarkError, ConfigError
from benchmark.core.overrides import Overrides
from benchmark.data import load_dataset
from benchmark.data.classical.datasets import CLASSICAL
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
from benchmark.run.observer import RunObserver
from benchmark.run.request import RunRequest
from benchmark.run.resolve import expand_models
from benchmark.run.runner import run_benchmark
from benchmark.tracking.store import configure

__all__ = [
    "EXIT_OK",
    "EXIT_OUT_OF_BAND",
    "FULL_PROTOCOL",
    "QUICK_PROTOCOL",
    "LogObserver",
    "ModelResult",
    "ValidationReport",
    "ValidationRequest",
    "protocol_for",
    "render_markdown",
    "run_validation",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ValidationRequest(RunRequest):
    """What ``benchmark validate`` was asked to do: a `RunRequest` whose data, split protocol, seed and
    overrides are fixed by ``protocol`` (one run per dataset × model), plus the report's settings.

    Attributes:
        models: registered model names (``abmil-plain`` and ``abmil`` are the checked ones).
        datasets: names from `benchmark.data.classical.datasets.CLASSICAL`.
        protocol: `FULL_PROTOCOL` (default), `QUICK_PROTOCOL` (a smoke test, labelled as such) or a reduced copy.
        bands: dataset → (low, high) accuracy band (default `BANDS`).
        output: where to write the Markdown document (None: do not write).
        context_folds: run the unchecked (context) models on the first this-many fold columns only, e.g.
            10 = the first repeat, to bound compute; checked models always get ``folds`` (all by default).
            Context rows show ``10/50`` in their Folds column; the check itself is unaffected.
        command_line: the command shown in the document.
        note: free text added to the document's Timings section (e.g. the machine and its load).
        report_only: train nothing; read the recorded runs matching the protocol (see `recorded_parent`)
            and write the document, e.g. after the harness gained config fields since the run.

    Inherited and used: ``tracking.uri`` (experiments are ``validate-<dataset>``, ``-quick`` in quick mode),
    ``cv.splits_dir`` (``<dir>/<dataset>/kfold-k10x5-seed0.csv``), ``folds`` (the document then says PARTIAL)
    and ``threads``.
    """

    models: Sequence[str] = DEFAULT_MODELS
    datasets: Sequence[str] = DEFAULT_DATASETS
    protocol: ValidationProtocol = FULL_PROTOCOL
    bands: Mapping[str, tuple[float, float]] | None = None
    output: str | Path | None = "docs/validation.md"
    context_folds: int | None = None
    command_line: str | None = None
    note: str | None = None
    report_only: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.context_folds is not None and self.context_folds < 1:
            raise ConfigError(f"validate --context-folds must be ≥ 1, got {self.context_folds}.")
        unknown = [d for d in self.datasets if d not in CLASSICAL]
        if unknown or not self.datasets:
            raise ConfigError(
                f"validate --datasets: {unknown or 'none given'}; choose from {', '.join(CLASSICAL)}."
            )


def run_validation(request: ValidationRequest, observer: RunObserver | None = None) -> ValidationReport:
    """Run every model on every classical dataset under the protocol, then write the validation document.

    Re-running resumes: finished folds are read back, not retrained.

    Returns:
        A `ValidationReport`; ``exit_code`` is `EXIT_OUT_OF_BAND` when a checked ABMIL row misses its band.

    Raises:
        UnknownNameError: unknown model; DataError: the ``mil`` CSVs are missing or altered.
    """
    models = expand_models(request.models)  # unknown names fail here, before any training
    uri = configure(request.tracking.uri)  # after every name check: a user error leaves no store behind
    bands = dict(BANDS if request.bands is None else request.bands)
    started = time.perf_counter()
    rows: list[ModelResult] = []
    experiments: dict[str, str] = {}
    for dataset in request.datasets:
        experiments[dataset] = f"validate-{dataset}" + ("-quick" if request.protocol.name == "quick" else "")
        if request.report_only:
            rows += _recorded_rows(request, uri, experiments[dataset], dataset, models, bands)
        else:
            rows += _run_rows(request, uri, experiments[dataset], dataset, models, bands, observer)
    return _report(request, rows, bands, uri, experiments, time.perf_counter() - started)


def _recorded_rows(
    request: ValidationRequest,
    uri: str,
    experiment: str,
    dataset: str,
    models: Sequence[str],
    bands: Mapping[str, tuple[float, float]],
) -> list[ModelResult]:
    """The rows of the runs recorded under the protocol; a missing checked model is an error."""
    client = MlflowClient(tracking_uri=uri)
    rows = []
    for model in models:
        try:
            parent = recorded_parent(
                client, experiment, dataset, model, request.protocol, request.cv.splits_dir
            )
        except BenchmarkError:
            if model in CHECKED_MODELS:
                raise
            log.warning("validate --report-only: no recorded %s run on %s; row omitted", model, dataset)
            continue
        rows.append(read_result(client, parent, dataset, model, request.protocol, bands))
    return rows


def _run_rows(
    request: ValidationRequest,
    uri: str,
    experiment: str,
    dataset: str,
    models: Sequence[str],
    bands: Mapping[str, tuple[float, float]],
    observer: RunObserver | None,
) -> list[ModelResult]:
    """Run (or resume) every model on ``dataset`` under the protocol and read its row back."""
    proto = request.protocol
    bags = load_dataset(DataConfig(name=dataset))  # once for every model
    rows = []
    for model in models:
        log.info("validate %s / %s (%s protocol)", dataset, model, proto.name)
        folds = request.folds
        if request.context_folds is not None and model not in CHECKED_MODELS:
            bound = request.context_folds
            folds = [f for f in (folds if folds is not None else range(bound)) if f < bound]
        run = RunRequest(
            models=[model],
            data=DataConfig(name=dataset),
            cv=dataclasses.replace(proto.cv, splits_dir=request.cv.splits_dir),
            seed=proto.seed,
            overrides=Overrides(train=proto.train, model=proto.model.get(model, {})),
            tracking=TrackingConfig(uri=uri, experiment=experiment),
            folds=folds,
        )
        summary = run_benchmark(run, observer, bags=bags)
        client = MlflowClient(tracking_uri=summary.tracking_uri)
        rows.append(read_result(client, summary.parents[model], dataset, model, proto, bands))
    return rows


def _report(
    request: ValidationRequest,
    rows: list[ModelResult],
    bands: Mapping[str, tuple[float, float]],
    uri: str,
    experiments: dict[str, str],
    seconds: float,
) -> ValidationReport:
    """The verdicts and the Markdown document (written to ``request.output`` unless None)."""
    failures = [
        f"{r.dataset}/{r.model}: accuracy {r.acc_mean:.3f} not in [{r.band[0]:.2f}, {r.band[1]:.2f}]"
        for r in rows
        if r.checked and r.band is not None and not r.in_band
    ]
    # Complete = every checked row ran the whole protocol; context rows may be bounded by ``context_folds``.
    complete = all(r.folds_run == r.folds_total for r in rows if r.model in CHECKED_MODELS)
    report = ValidationReport(
        rows=rows,
        protocol=request.protocol,
        complete=complete,
        failures=failures,
        exit_code=EXIT_OUT_OF_BAND if failures else EXIT_OK,
        markdown="",
        output=None,
        wall_seconds=seconds,
        experiments=experiments,
    )
    report.markdown = render_markdown(
        report, bands=bands, tracking_uri=uri, command_line=request.command_line, note=request.note
    )
    if request.output is not None:
        report.output = Path(request.output)
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
