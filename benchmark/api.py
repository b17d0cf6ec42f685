"""The benchmark as plain Python calls: the CLI and notebooks both use these.

    >>> from benchmark import api
    >>> from benchmark.core.config import DataConfig, CVConfig
    >>> from benchmark.run.request import RunRequest
    >>> summary = api.run(RunRequest(models=["abmil", "hmil"], data=DataConfig("panda-sim"),
    ...                              cv=CVConfig(n_folds=2)))  # doctest: +SKIP
    >>> api.compare(summary.tracking_uri, summary.experiment).to_markdown()  # doctest: +SKIP

Every call takes a typed request (`RunRequest`, `TuneRequest`, `ValidationRequest`) or config, validates it
before any expensive work, and raises `benchmark.core.errors.BenchmarkError` subclasses for user errors.

Imports: the light calls (splits, data checks, packing) import only numpy/pandas/torch-level modules at the
top; each heavy subsystem (the runner and MLflow, the comparison and seaborn, Optuna, the validation) is
imported inside the call that needs it. Measured (2-core machine, warm cache): importing them all at the top
made ``benchmark splits show`` take 4.1 s and import mlflow, optuna and seaborn; the issue's start-up rule is
that the data commands never import them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from benchmark.core.config import CVConfig, DataConfig
from benchmark.core.errors import ConfigError
from benchmark.core.overrides import Overrides
from benchmark.cv.files import splits_of
from benchmark.cv.folds import describe_splits
from benchmark.data import BagCollection, load_dataset
from benchmark.data.check import CheckReport, check_dataset
from benchmark.data.files.pack import pack_dataset
from benchmark.data.stats import FeatureStats, load_with_instance_labels
from benchmark.data.stats import feature_stats as compute_feature_stats
from benchmark.run.request import RunRequest
from benchmark.run.threads import apply_thread_policy

if TYPE_CHECKING:
    from benchmark.compare.comparison import Comparison
    from benchmark.heatmap.make import HeatmapRequest, HeatmapResult
    from benchmark.reproduce.runner import ValidationReport, ValidationRequest
    from benchmark.run.observer import RunObserver
    from benchmark.run.perf import PerfReport
    from benchmark.run.runner import RunSummary
    from benchmark.tracking.status import MethodStatus
    from benchmark.tune.best import BestParams
    from benchmark.tune.engine import StudySummary, TuneObserver, TuneRequest

__all__ = [
    "TunedRun",
    "ablate",
    "check_data",
    "compare",
    "describe_splits",
    "feature_stats",
    "heatmap",
    "pack_data",
    "perf",
    "plot_comparison",
    "reproduce",
    "run",
    "run_tuned",
    "set_threads",
    "splits",
    "status",
    "tune",
]


def set_threads(threads: int | None) -> int:
    """torch CPU threads of this process (None: the CPUs it may use; never more). Execution only: recorded on
    every fold run as ``compute.threads``, never part of a config hash."""
    return apply_thread_policy(threads)


def run(request: RunRequest, observer: RunObserver | None = None) -> RunSummary:
    """Train and test every requested model on identical folds, log to MLflow; resumable (finished folds are
    skipped)."""
    from benchmark.run.runner import run_benchmark

    set_threads(request.threads)
    return run_benchmark(request, observer)


@dataclass
class TunedRun:
    """``run_tuned``'s result: the last run's summary, every method's parent, and the studies used."""

    summary: RunSummary
    parents: dict[str, str] = field(default_factory=dict)
    studies: list[BestParams] = field(default_factory=list)


def run_tuned(
    request: RunRequest,
    *,
    study: str | None = None,
    best: bool = False,
    storage: str | None = None,
    observer: RunObserver | None = None,
) -> TunedRun:
    """Train and test with tuned parameters: those of ``study`` (one model), or with ``best`` those of every
    model's default study ``<dataset>-<model>``. Explicit overrides of ``request`` win over the study's."""
    from benchmark.run.resolve import expand_models
    from benchmark.run.runner import run_benchmark
    from benchmark.tune.best import best_params

    if bool(study) == bool(best):
        raise ConfigError(
            "--params-from and --best exclude each other; use one." if study else "give a study."
        )
    models = list(request.models)
    if study:
        found = best_params(study, storage)
        if models not in (["all"], [found.model]):
            raise ConfigError(
                f"--params-from {study} tuned model {found.model!r}, not {','.join(models)}; "
                f"drop --models or pass --models {found.model}."
            )
        plan = [found]
    else:
        plan = [best_params(f"{request.data.name}-{m}", storage) for m in expand_models(models)]
    set_threads(request.threads)
    result = None
    for params in plan:
        tuned = dataclasses.replace(
            request,
            models=[params.model],
            overrides=Overrides.combine(params.overrides, request.overrides),  # explicit options win
            label=f"{params.model}-tuned",
            parent_tags=params.tags(),
        )
        summary = run_benchmark(tuned, observer)
        result = result or TunedRun(summary)
        result.summary = summary
        result.parents.update(summary.parents)
        result.studies.append(params)
    return result


def compare(tracking_uri: str | None, experiment: str, **options: object) -> Comparison:
    """Methods × metrics (mean ± std over folds, paired test vs the best) of one experiment from MLflow;
    ``options`` as `benchmark.compare.comparison.compare` (level, per_class, methods, split_digest, primary)."""
    from benchmark.compare.comparison import compare as compare_runs
    from benchmark.tracking.store import configure

    return compare_runs(configure(tracking_uri), experiment, **options)


def plot_comparison(comparison: Comparison, path: str | Path) -> Path:
    """The comparison figure (png/pdf/svg)."""
    from benchmark.compare.comparison import plot_comparison as plot

    return plot(comparison, path)


def heatmap(request: HeatmapRequest, *, tracking_uri: str | None = None) -> HeatmapResult:
    """``benchmark heatmap``: a logged fold model's attention on one slide, written to a PNG (a parent run
    resolves to the fold testing the slide)."""
    from mlflow.tracking import MlflowClient

    from benchmark.heatmap.make import make_heatmap
    from benchmark.tracking.store import configure

    return make_heatmap(request, MlflowClient(configure(tracking_uri)))


def status(experiment: str, *, tracking_uri: str | None = None) -> list[MethodStatus]:
    """``benchmark status``: per parent run of ``experiment``, the folds finished, running, failed, killed and
    pending (read from MLflow, so it follows runs started anywhere)."""
    from mlflow.tracking import MlflowClient

    from benchmark.tracking.status import experiment_status
    from benchmark.tracking.store import configure

    return experiment_status(MlflowClient(configure(tracking_uri)), experiment)


def ablate(
    request: RunRequest,
    rungs: Sequence[str] | None = None,
    observer: RunObserver | None = None,
    *,
    model: str = "hmil",
) -> dict[str, Comparison]:
    """HMIL's ablation ladder on identical folds (default rungs: `DEFAULT_RUNGS`); the ladder table per level."""
    from benchmark.run.ablate import DEFAULT_RUNGS, run_ablation

    set_threads(request.threads)
    return run_ablation(request, DEFAULT_RUNGS if rungs is None else rungs, observer, model=model)


def tune(request: TuneRequest, observer: TuneObserver | None = None) -> list[StudySummary]:
    """Add ``request.trials`` Optuna trials to every requested model's study (validation folds only)."""
    from benchmark.tune.engine import run_tune

    set_threads(request.threads)  # this process's trials; spawned workers set their own (default 1)
    return run_tune(request, observer)


def reproduce(request: ValidationRequest, observer: RunObserver | None = None) -> ValidationReport:
    """``benchmark validate``: ABMIL on the classical MIL sets against Ilse et al. (2018)."""
    from benchmark.reproduce.runner import run_validation

    set_threads(request.threads)
    return run_validation(request, observer if not request.report_only else None)


def splits(
    data: DataConfig, cv: CVConfig, *, new_splits: bool = False
) -> tuple[BagCollection, pd.DataFrame, Path, str]:
    """The dataset and its split table, file and sha256 digest (created on first use, then reused)."""
    bags = load_dataset(data)
    split_table, path, digest = splits_of(bags.name, bags.table(), cv, new_splits=new_splits)
    return bags, split_table, path, digest


def feature_stats(data: DataConfig, *, max_instances: int = 20_000, seed: int = 0) -> FeatureStats:
    """How much a dataset's instance features look like real patch embeddings (``benchmark data stats``)."""
    if max_instances < 2:
        raise ConfigError(f"--max-instances must be ≥ 2, got {max_instances}.")
    bags, labels = load_with_instance_labels(data)
    return compute_feature_stats(bags, instance_labels=labels, max_instances=max_instances, seed=seed)


def perf(data: DataConfig, models: Sequence[str], **options: object) -> PerfReport:
    """``benchmark perf``: CLAM's loop vs the batched trainer vs the compute floor, measured in one run;
    ``options`` as `benchmark.run.perf.run_perf` (bags, epochs, batch_size, slides, device, threads, seed)."""
    from benchmark.run.perf import run_perf

    return run_perf(data, models, **options)


def check_data(data: DataConfig) -> CheckReport:
    """Validate every slide of a dataset (files, dims, NaN/Inf, labels, duplicates)."""
    return check_dataset(data)


def pack_data(data: DataConfig, *, force: bool = False) -> Path:
    """Build (or reuse) the packed memory-mapped feature cache of a dataset."""
    return Path(pack_dataset(data, force=force))
