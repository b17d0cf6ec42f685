"""One model's runs in MLflow: the parent run (created once, found again on resume) and one child run per fold.

A crash leaves the unfinished child FAILED (Ctrl-C: KILLED); a SIGKILLed child is left RUNNING by necessity
and is marked KILLED by the next run before its fold is redone. A parent is FINISHED only when every fold
of the protocol has a FINISHED child.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.entities import Run, RunStatus
from mlflow.tracking import MlflowClient

from benchmark import __version__
from benchmark.core.config import RunConfig
from benchmark.core.hashing import config_hash, flatten
from benchmark.data import BagCollection
from benchmark.run.observer import RunObserver
from benchmark.run.setup import fold_seed
from benchmark.run.train import train_fold
from benchmark.tracking.description import parent_description
from benchmark.tracking.fold_logging import log_fold_outcome, log_fold_setup
from benchmark.tracking.liveness import live_folds, mark_stale_children, worker_tags
from benchmark.tracking.pooled import log_pooled
from benchmark.tracking.store import (
    BufferedCurves,
    aggregate_folds,
    find_parent,
    finished_folds,
    git_commit,
    log_metrics,
    log_params,
    results_json,
    retire_superseded,
)

__all__ = ["RunContext", "close_model", "model_ident", "open_model", "run_fold", "run_model"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunContext:
    """What every model of one ``benchmark run`` shares: the store, the data and the folds.

    Attributes:
        client, exp_id: the MLflow client and experiment id.
        bags: the dataset.
        splits, split_path, digest: the split table, its file and sha256.
        folds: the fold indices to run.
        parts: fold → {"train"/"val"/"test": slide indices into ``bags``}.
        observer: progress hooks.
        command: the command line that started the run (shown in the parent's description).
        heatmaps: attention heatmaps of this many test slides logged per fold (``--heatmaps``).
    """

    client: MlflowClient
    exp_id: str
    bags: BagCollection
    splits: pd.DataFrame
    split_path: Path
    digest: str
    folds: Sequence[int]
    parts: Mapping[int, Mapping[str, np.ndarray]]
    observer: RunObserver
    command: str | None = None
    heatmaps: int = 0


def model_ident(ctx: RunContext, config: RunConfig, method: str) -> dict[str, str]:
    """The tags that identify a method's parent and fold runs (also recomputed by executor workers)."""
    return {
        "benchmark.method": method,
        "benchmark.dataset": ctx.bags.name,
        "benchmark.config_hash": config_hash(config),
        "benchmark.split_digest": ctx.digest,
        # Same config and folds on different features (another encoder, regenerated data) is another result.
        "benchmark.data_fingerprint": ctx.bags.fingerprint,
    }


def open_model(
    ctx: RunContext, config: RunConfig, method: str, parent_tags: Mapping[str, str]
) -> tuple[str, dict[int, Run], set[int]]:
    """Create (or find again) the parent run before any fold starts.

    Returns:
        ``(parent id, FINISHED folds, folds running right now in another live worker)``; callers run
        neither (a live worker's fold would otherwise get a second FINISHED child).
    """
    parent_id = _open_parent(ctx, config, method, model_ident(ctx, config, method), parent_tags)
    live = live_folds(ctx.client, ctx.exp_id, parent_id) & set(ctx.folds)
    if live:
        log.warning(
            "%s: fold(s) %s are running in another live worker; not started again", method, sorted(live)
        )
    return parent_id, finished_folds(ctx.client, ctx.exp_id, parent_id), live


def run_model(
    ctx: RunContext, config: RunConfig, method: str, parent_tags: Mapping[str, str]
) -> tuple[str, list[int]]:
    """Train and test ``config`` on every fold of ``ctx`` not yet FINISHED; returns (parent id, skipped folds)."""
    parent_id, done, live = open_model(ctx, config, method, parent_tags)
    skipped = sorted(f for f in ctx.folds if f in done or f in live)
    ctx.observer.on_model_start(method, ctx.folds, skipped, config.train.epochs)
    try:
        for fold in ctx.folds:
            if fold not in done and fold not in live:
                done[fold] = run_fold(ctx, config, method, parent_id, fold)
    except BaseException as exc:
        ctx.client.set_terminated(parent_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    close_model(ctx, config, method, parent_id, done)
    return parent_id, skipped


def close_model(
    ctx: RunContext, config: RunConfig, method: str, parent_id: str, done: Mapping[int, Run]
) -> None:
    """Aggregate the finished folds into the parent: metrics, description, pooled figures; FINISHED when all
    folds of the protocol are (else SCHEDULED)."""
    aggregated = aggregate_folds({f: done[f] for f in sorted(done)})
    complete = all(f in done for f in range(config.cv.total_folds))
    note = parent_description(
        method,
        ctx.bags.name,
        aggregated,
        n_finished=len(done),
        n_folds=config.cv.total_folds,
        split_digest=ctx.digest,
        config_hash=config_hash(config),
        command=ctx.command,
    )
    ctx.client.set_tag(parent_id, "mlflow.note.content", note)
    fold_runs = {f: run.info.run_id for f, run in done.items()}
    log_pooled(ctx.client, parent_id, method, fold_runs, n_folds=config.cv.total_folds)
    _close_parent(ctx.client, parent_id, aggregated, n_finished=len(done), complete=complete)
    ctx.observer.on_model_end(method, aggregated)


def _open_parent(
    ctx: RunContext, config: RunConfig, method: str, ident: Mapping[str, str], parent_tags: Mapping[str, str]
) -> str:
    """The parent run of (method, config, folds, data): found again on resume, else created with the params."""
    client = ctx.client
    parent = find_parent(client, ctx.exp_id, ident)
    if parent is None:
        tags = {
            **ident,
            "benchmark.role": "parent",
            "benchmark.split_file": str(ctx.split_path),
            "benchmark.n_folds": str(config.cv.total_folds),
            "benchmark.protocol": config.cv.protocol,
            "benchmark.version": __version__,
        }
        commit = git_commit()
        if commit:
            tags["benchmark.git_commit"] = commit
        parent = client.create_run(
            ctx.exp_id, tags=tags, run_name=f"{method}-{ident['benchmark.config_hash'][:8]}"
        )
        log_params(client, parent.info.run_id, _params(config, ctx.bags))
        client.log_dict(parent.info.run_id, config.to_dict(), "config.json")
    else:
        client.update_run(parent.info.run_id, status="RUNNING")
    parent_id = parent.info.run_id
    for key, value in parent_tags.items():
        client.set_tag(parent_id, key, value)
    killed = mark_stale_children(client, ctx.exp_id, parent_id)
    if killed:
        log.warning("%s: %d child run(s) left RUNNING by a dead process were marked KILLED", method, killed)
    return parent_id


def _close_parent(
    client: MlflowClient,
    parent_id: str,
    aggregated: Mapping[str, Mapping[str, object]],
    *,
    n_finished: int,
    complete: bool,
) -> None:
    """Log the mean ± std over the finished folds; FINISHED only when every fold of the protocol is."""
    client.log_text(parent_id, results_json(aggregated), "results.json")
    flat = {f"{k}.mean": v["mean"] for k, v in aggregated.items()}
    flat.update({f"{k}.std": v["std"] for k, v in aggregated.items()})
    log_metrics(client, parent_id, flat)
    rows = [  # overall metrics only (per-class rows live in the fold tables)
        {"metric": k, "mean": v["mean"], "std": v["std"], "n": v["n"]}
        for k, v in aggregated.items()
        if k.count(".") == 2
    ]
    client.log_table(parent_id, pd.DataFrame(rows), "summary.json")
    client.set_tag(parent_id, "benchmark.folds_finished", str(n_finished))
    client.set_terminated(parent_id, "FINISHED" if complete else RunStatus.to_string(RunStatus.SCHEDULED))


def _params(config: RunConfig, bags: BagCollection) -> dict[str, object]:
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


def run_fold(ctx: RunContext, config: RunConfig, method: str, parent_id: str, fold: int) -> Run:
    """One child run (a cell): train on the fold's train part, select on val, test; FINISHED or FAILED/KILLED.

    A KILLED/FAILED child of the same fold (a dead worker's) is retired once this one FINISHED, so a fold
    never has two FINISHED children.
    """
    client = ctx.client
    ident = model_ident(ctx, config, method)
    seed = fold_seed(config.seed, fold)
    tags = {
        **ident,
        **worker_tags(),  # lets a later run tell a live worker's RUNNING child from a dead one's
        "benchmark.role": "fold",
        "benchmark.fold": str(fold),
        "mlflow.parentRunId": parent_id,
    }
    run_id = client.create_run(ctx.exp_id, tags=tags, run_name=f"{method}-fold{fold}").info.run_id
    ctx.observer.on_fold_start(method, fold)
    curves = BufferedCurves(client, run_id)
    try:
        log_fold_setup(
            client, run_id, config, ctx.bags, ctx.splits, ctx.split_path, fold, seed, ctx.parts[fold]
        )

        def on_epoch(epoch: int, record: Mapping[str, float]) -> None:
            curves.add(record, step=epoch)
            ctx.observer.on_epoch(method, fold, epoch, record)

        outcome = train_fold(config, ctx.bags, ctx.parts[fold], seed=seed, on_epoch=on_epoch)
        curves.flush()
        log_fold_outcome(client, run_id, config, ctx.bags, outcome, fold=fold, heatmaps=ctx.heatmaps)
    except BaseException as exc:
        try:
            curves.flush()  # keep the curves of a failed or interrupted fold for diagnosis
        except Exception:  # noqa: BLE001 - never mask the original error
            log.warning("could not write the curves of %s fold %d", method, fold)
        client.set_terminated(run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    retire_superseded(client, ctx.exp_id, parent_id, fold, by=run_id)
    ctx.observer.on_fold_end(method, fold, outcome)
    return client.get_run(run_id)
