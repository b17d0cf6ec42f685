"""``benchmark run``: dataset → identical hashed folds → every model × fold → MLflow, resumable.

Re-running the same command skips folds whose child run FINISHED under the same config hash and
split digest. A crash leaves the unfinished child FAILED (Ctrl-C: KILLED); a SIGKILLed child is
left RUNNING by necessity and is marked KILLED by the next run before its fold is redone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from benchmark import __version__
from benchmark.core.config import CVConfig, DataConfig, RunConfig, config_hash
from benchmark.core.errors import ConfigError
from benchmark.cv.files import fold_indices, get_or_create_splits, load_splits, split_digest, validate_splits
from benchmark.data import BagCollection, load_dataset
from benchmark.run.resolve import expand_models, log_dataset_protocol, resolve_run_config
from benchmark.run.train import FoldOutcome, fold_seed, train_fold
from benchmark.tracking.fold_logging import log_fold_outcome, log_fold_setup
from benchmark.tracking.store import (
    BufferedCurves,
    aggregate_folds,
    check_split_digest,
    configure,
    ensure_experiment,
    find_parent,
    finished_folds,
    git_commit,
    log_metrics,
    log_params,
    mark_stale_children,
    results_json,
)

__all__ = ["RunObserver", "RunRequest", "RunSummary", "run_benchmark", "splits_for"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunRequest:
    """What ``benchmark run`` was asked to do.

    Attributes:
        models: registry names, or ["all"].
        data, cv: dataset and split protocol.
        seed: run seed (fold seeds derive from it).
        train_overrides, model_overrides: ``--set`` values as strings (cast per field).
        tracking_uri, experiment: MLflow store and experiment (default: the dataset name).
        splits_root: where split files live; splits_file: an explicit split file.
        new_splits: regenerate the default split file / accept a digest differing from the recorded one.
        folds: run only these fold indices (default all).
        label: method name recorded in MLflow instead of the model name (one model only), e.g. the rungs
            of an ablation ladder ("hmil+ham").
        parent_tags: extra tags on the parent run (e.g. ``benchmark.params_from.study`` for tuned runs).
    """

    models: Sequence[str]
    data: DataConfig = field(default_factory=DataConfig)
    cv: CVConfig = field(default_factory=CVConfig)
    seed: int = 0
    train_overrides: Mapping[str, str] = field(default_factory=dict)
    model_overrides: Mapping[str, str] = field(default_factory=dict)
    loss_overrides: Mapping[str, str] = field(default_factory=dict)
    tracking_uri: str | None = None
    experiment: str | None = None
    splits_root: str = "splits"
    splits_file: str | None = None
    new_splits: bool = False
    folds: Sequence[int] | None = None
    label: str | None = None
    parent_tags: Mapping[str, str] = field(default_factory=dict)


class RunObserver:
    """Progress hooks (the CLI renders them with rich; the library only logs)."""

    def on_model_start(self, model: str, folds: Sequence[int], done: Sequence[int], epochs: int) -> None: ...
    def on_fold_start(self, model: str, fold: int) -> None: ...
    def on_epoch(self, model: str, fold: int, epoch: int, record: Mapping[str, float]) -> None: ...
    def on_fold_end(self, model: str, fold: int, outcome: FoldOutcome) -> None: ...
    def on_model_end(self, model: str, aggregated: Mapping[str, Mapping[str, object]]) -> None: ...


@dataclass
class RunSummary:
    tracking_uri: str
    experiment: str
    split_file: str
    split_digest: str
    parents: dict[str, str] = field(default_factory=dict)  # model → parent run id
    skipped: dict[str, list[int]] = field(default_factory=dict)  # model → folds skipped (already finished)


def splits_for(request: RunRequest, bags: BagCollection):
    """The split table, its file and digest for a request (an explicit --splits file or the default one)."""
    table = bags.table()
    if request.splits_file:
        path = Path(request.splits_file)
        splits = load_splits(path)
        validate_splits(splits, table, request.cv.protocol, source=str(path))
        return splits, path, split_digest(path)
    return get_or_create_splits(
        Path(request.splits_root), bags.name, table, request.cv, overwrite=request.new_splits
    )


def run_benchmark(
    request: RunRequest, observer: RunObserver | None = None, *, bags: BagCollection | None = None
) -> RunSummary:
    """Run every requested model on every fold (skipping finished ones) and aggregate in MLflow.

    ``bags`` is ``load_dataset(request.data)`` when the caller already holds it (the ablation ladder and
    ``validate`` call this once per rung/model on the same data: load it once, not per call).
    """
    observer = observer or RunObserver()
    models = expand_models(request.models)
    if len(models) > 1 and (request.model_overrides or request.loss_overrides or request.label):
        raise ConfigError("--set model.*/loss.* and labels apply to one model; run models separately.")
    configs = {
        m: resolve_run_config(
            m,
            data=request.data,
            cv=request.cv,
            seed=request.seed,
            train_overrides=request.train_overrides,
            model_overrides=request.model_overrides,
            loss_overrides=request.loss_overrides,
        )
        for m in models
    }  # resolve (and validate) every config before any expensive work
    log_dataset_protocol(request.data, request.train_overrides, request.cv)
    bags = load_dataset(request.data) if bags is None else bags
    splits, split_path, digest = splits_for(request, bags)
    total = request.cv.total_folds
    folds = list(range(total)) if request.folds is None else list(request.folds)
    bad = [f for f in folds if not 0 <= f < total]
    if bad:
        raise ConfigError(f"--fold {bad} out of range 0..{total - 1}.")
    uri = configure(request.tracking_uri)
    client = MlflowClient()
    experiment = request.experiment or bags.name
    exp_id = ensure_experiment(client, experiment)
    check_split_digest(client, exp_id, str(split_path), digest, accept_new=request.new_splits)
    summary = RunSummary(uri, experiment, str(split_path), digest)
    parts = {f: fold_indices(splits, bags.table(), f) for f in folds}
    for model in models:
        method = request.label or model
        parent_id, skipped = _run_model(
            client,
            exp_id,
            configs[model],
            method,
            bags,
            splits,
            split_path,
            digest,
            folds,
            parts,
            observer,
            request.parent_tags,
        )
        summary.parents[method] = parent_id
        summary.skipped[method] = skipped
    return summary


def _run_model(
    client,
    exp_id,
    config: RunConfig,
    method,
    bags,
    splits,
    split_path,
    digest,
    folds,
    parts,
    observer,
    parent_tags=None,
):
    chash = config_hash(config)
    ident = {
        "benchmark.method": method,
        "benchmark.dataset": bags.name,
        "benchmark.config_hash": chash,
        "benchmark.split_digest": digest,
        # Same config and folds on different features (another encoder, regenerated data) is another result.
        "benchmark.data_fingerprint": bags.fingerprint,
    }
    parent = find_parent(client, exp_id, ident)
    if parent is None:
        tags = {
            **ident,
            "benchmark.role": "parent",
            "benchmark.split_file": str(split_path),
            "benchmark.n_folds": str(config.cv.total_folds),
            "benchmark.protocol": config.cv.protocol,
            "benchmark.version": __version__,
        }
        commit = git_commit()
        if commit:
            tags["benchmark.git_commit"] = commit
        parent = client.create_run(exp_id, tags=tags, run_name=f"{method}-{chash[:8]}")
        log_params(client, parent.info.run_id, _params(config, bags))
        client.log_dict(parent.info.run_id, config.to_dict(), "config.json")
    else:
        client.update_run(parent.info.run_id, status="RUNNING")
    parent_id = parent.info.run_id
    for key, value in (parent_tags or {}).items():
        client.set_tag(parent_id, key, value)
    killed = mark_stale_children(client, exp_id, parent_id)
    if killed:
        log.warning(
            "%s: %d child run(s) left RUNNING by a dead process were marked KILLED", config.model, killed
        )
    done = finished_folds(client, exp_id, parent_id)
    skipped = sorted(f for f in folds if f in done)
    observer.on_model_start(method, folds, skipped, config.train.epochs)
    try:
        for fold in folds:
            if fold in done:
                continue
            done[fold] = _run_fold(
                client,
                exp_id,
                parent_id,
                config,
                method,
                ident,
                bags,
                splits,
                split_path,
                fold,
                parts[fold],
                observer,
            )
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        client.set_terminated(parent_id, status)
        raise
    aggregated = aggregate_folds({f: done[f] for f in sorted(done)})
    client.log_text(parent_id, results_json(aggregated), "results.json")
    flat = {f"{k}.mean": v["mean"] for k, v in aggregated.items()}
    flat.update({f"{k}.std": v["std"] for k, v in aggregated.items()})
    log_metrics(client, parent_id, flat)
    client.log_table(parent_id, _summary_table(aggregated), "summary.json")
    complete = all(f in done for f in range(config.cv.total_folds))
    client.set_tag(parent_id, "benchmark.folds_finished", str(len(done)))
    # A parent is FINISHED only when every fold of the protocol has a FINISHED child.
    client.set_terminated(parent_id, "FINISHED" if complete else RunStatus.to_string(RunStatus.SCHEDULED))
    observer.on_model_end(method, aggregated)
    return parent_id, skipped


def _params(config: RunConfig, bags: BagCollection) -> dict[str, object]:
    from benchmark.core.config import flatten

    params: dict[str, object] = dict(flatten(config))
    params.update(
        {
            "data.n_slides": len(bags),
            "data.dim": bags.dim,
            "data.fingerprint": bags.fingerprint,
            "data.hierarchy": bags.hierarchy.describe(),
        }
    )
    for k, v in (bags.info or {}).items():
        params[f"data.info.{k}"] = v
    return params


def _summary_table(aggregated: Mapping[str, Mapping[str, object]]):
    import pandas as pd

    rows = [
        {"metric": k, "mean": v["mean"], "std": v["std"], "n": v["n"]}
        for k, v in aggregated.items()
        if k.count(".") == 2
    ]  # overall metrics only (per-class rows live in the fold tables)
    return pd.DataFrame(rows)


def _run_fold(
    client, exp_id, parent_id, config, method, ident, bags, splits, split_path, fold, parts, observer
):
    seed = fold_seed(config.seed, fold)
    tags = {**ident, "benchmark.role": "fold", "benchmark.fold": str(fold), "mlflow.parentRunId": parent_id}
    run = client.create_run(exp_id, tags=tags, run_name=f"{method}-fold{fold}")
    run_id = run.info.run_id
    observer.on_fold_start(method, fold)
    curves = BufferedCurves(client, run_id)
    try:
        log_fold_setup(client, run_id, config, bags, splits, split_path, fold, seed, parts)

        def on_epoch(epoch: int, record: Mapping[str, float]) -> None:
            curves.add(record, step=epoch)
            observer.on_epoch(method, fold, epoch, record)

        outcome = train_fold(config, bags, parts, seed=seed, on_epoch=on_epoch)
        curves.flush()
        log_fold_outcome(client, run_id, config, bags, outcome)
    except BaseException as exc:
        try:
            curves.flush()  # keep the curves of a failed or interrupted fold for diagnosis
        except Exception:  # noqa: BLE001 - never mask the original error
            log.warning("could not write the curves of %s fold %d", method, fold)
        client.set_terminated(run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    observer.on_fold_end(method, fold, outcome)
    return client.get_run(run_id)
