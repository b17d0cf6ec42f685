"""``benchmark run``: dataset → identical hashed folds → every model × fold → MLflow, resumable.

Re-running the same request skips folds whose child run FINISHED under the same config hash, split digest
and data fingerprint (`benchmark.run.model_runs`).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from benchmark.compare.overview import update_overview
from benchmark.core.config import TrackingConfig
from benchmark.core.errors import ConfigError
from benchmark.cv.files import fold_indices, splits_of
from benchmark.data import BagCollection, load_dataset
from benchmark.run.model_runs import RunContext, run_model
from benchmark.run.observer import RunObserver
from benchmark.run.parallel import run_cells_in_parallel
from benchmark.run.request import RunRequest
from benchmark.run.resolve import log_dataset_protocol, resolve_configs
from benchmark.run.slurm import check_cluster_store, run_cells_on_slurm
from benchmark.run.threads import cpu_budget
from benchmark.tracking.store import check_split_digest, configure, ensure_experiment

__all__ = ["RunObserver", "RunRequest", "RunSummary", "resolve_configs", "run_benchmark", "splits_for"]

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    tracking_uri: str
    experiment: str
    split_file: str
    split_digest: str
    parents: dict[str, str] = field(default_factory=dict)  # method → parent run id
    skipped: dict[str, list[int]] = field(default_factory=dict)  # method → folds skipped (already finished)
    experiment_id: str = ""


def splits_for(request: RunRequest, bags: BagCollection) -> tuple[pd.DataFrame, Path, str]:
    """The split table, its file and digest for a request (an explicit split file or the default one)."""
    return splits_of(bags.name, bags.table(), request.cv, new_splits=request.new_splits)


def run_benchmark(
    request: RunRequest, observer: RunObserver | None = None, *, bags: BagCollection | None = None
) -> RunSummary:
    """Run every requested model on every fold (skipping finished ones) and aggregate in MLflow.

    ``bags`` is ``load_dataset(request.data)`` when the caller already holds it (the ablation ladder and
    ``validate`` call this once per rung/model on the same data: load it once, not per call).
    """
    configs = resolve_configs(request)  # every config is validated before any expensive work
    log_dataset_protocol(request.data, request.overrides.train, request.cv)
    bags = load_dataset(request.data) if bags is None else bags
    splits, split_path, digest = splits_for(request, bags)
    total = request.cv.total_folds
    folds = list(range(total)) if request.folds is None else list(request.folds)
    bad = [f for f in folds if not 0 <= f < total]
    if bad:
        raise ConfigError(f"--fold {bad} out of range 0..{total - 1}.")
    uri = configure(request.tracking.uri)
    if request.executor == "slurm":
        check_cluster_store(uri)
    client = MlflowClient()
    experiment = request.tracking.experiment or bags.name
    exp_id = ensure_experiment(client, experiment)
    check_split_digest(client, exp_id, str(split_path), digest, accept_new=request.new_splits)
    summary = RunSummary(uri, experiment, str(split_path), digest, experiment_id=exp_id)
    parts = {f: fold_indices(splits, bags.table(), f) for f in folds}
    ctx = RunContext(
        client,
        exp_id,
        bags,
        splits,
        split_path,
        digest,
        folds,
        parts,
        observer or RunObserver(),
        request.command,
        request.heatmaps,
    )
    where = TrackingConfig(
        uri=uri, experiment=experiment
    )  # recorded resolved, so config.json replays exactly
    methods = {model: request.label or model for model in configs}
    workers = (request.jobs or cpu_budget()) if request.executor == "local" else 1
    ctx.observer.on_plan(
        list(methods.values()), folds, {methods[m]: c.train.epochs for m, c in configs.items()}, workers
    )
    configs = {m: dataclasses.replace(c, tracking=where) for m, c in configs.items()}
    if request.executor == "slurm":
        summary.parents, summary.skipped = run_cells_on_slurm(request, ctx, configs, methods)
        if not request.slurm.wait:
            return summary  # the array's tasks close the parents and refresh the overview
    elif request.executor == "local":
        summary.parents, summary.skipped = run_cells_in_parallel(request, ctx, configs, methods)
    else:
        for model, config in configs.items():
            method = methods[model]
            summary.parents[method], summary.skipped[method] = run_model(
                ctx, config, method, request.parent_tags
            )
    _refresh_overview(summary)
    return summary


def _refresh_overview(summary: RunSummary) -> None:
    """The experiment's AUC overview (`benchmark.compare.overview`), now including this run's methods."""
    try:
        update_overview(summary.tracking_uri, summary.experiment, split_digest=summary.split_digest)
    except Exception:  # noqa: BLE001 - the runs are recorded; a failed summary figure must not fail them
        log.warning("could not refresh the experiment overview of %s", summary.experiment, exc_info=True)
