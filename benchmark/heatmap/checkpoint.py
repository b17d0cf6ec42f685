"""A fold's trained model read back from MLflow: which fold run a ``--run`` id means, its ``checkpoint.pt``
(state dict, config, feature statistics) and its test slides (``predictions.csv``).

A fold run (tag ``benchmark.role=fold``) is used as given. A parent run resolves to the child whose test
part holds the slide, so ``--run <parent>`` shows each slide as the model that never trained on it saw it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from benchmark.core.config import CVConfig, DataConfig, LossTerm, RunConfig, TrackingConfig, TrainConfig
from benchmark.core.errors import ConfigError, DataError
from benchmark.core.overrides import apply_overrides

__all__ = ["FoldCheckpoint", "config_from_dict", "load_checkpoint", "resolve_fold_run"]

CHECKPOINT = "checkpoint.pt"
PREDICTIONS = "predictions.csv"


@dataclass(frozen=True)
class FoldCheckpoint:
    """What a fold run logged about its model.

    Attributes:
        run_id: the fold run.
        fold: its fold index.
        config: the run's resolved config.
        state_dict: the selected weights.
        standardize: the training part's (mean, std) feature statistics, when the fold standardised.
        test_slides: the fold's test slide ids (``predictions.csv``).
        predictions: that table indexed by slide id (true and predicted labels, probabilities).
    """

    run_id: str
    fold: int
    config: RunConfig
    state_dict: dict[str, torch.Tensor]
    standardize: tuple[np.ndarray, np.ndarray] | None
    test_slides: list[str]
    predictions: pd.DataFrame


def config_from_dict(d: dict[str, Any]) -> RunConfig:
    """A `RunConfig` from its ``to_dict`` form (``config.json``, the checkpoint's ``config``)."""
    return RunConfig(
        model=d["model"],
        model_params=d.get("model_params", {}),
        loss=tuple(LossTerm(**t) for t in d.get("loss", [])) or (LossTerm("fine_ce"),),
        data=apply_overrides(DataConfig(), d.get("data", {}), section="data"),
        train=apply_overrides(TrainConfig(), d.get("train", {}), section="train"),
        cv=apply_overrides(CVConfig(), d.get("cv", {}), section="cv"),
        seed=int(d.get("seed", 0)),
        tracking=apply_overrides(TrackingConfig(), d.get("tracking", {}), section="tracking"),
    )


def _get_run(client: MlflowClient, run_id: str) -> Run:
    try:
        return client.get_run(run_id)
    except MlflowException:
        raise ConfigError(
            f"--run {run_id}: no such run in this MLflow store; pass a parent or fold run id "
            "(MLflow UI, or `benchmark compare`) and the store it is in with --tracking-uri."
        ) from None


def _download(client: MlflowClient, run_id: str, name: str, tmp: str) -> Path:
    try:
        return Path(client.download_artifacts(run_id, name, tmp))
    except (MlflowException, OSError):
        raise DataError(
            f"--run {run_id}: the run has no {name} artifact; heatmaps need a finished fold run of "
            "`benchmark run` (which logs it)."
        ) from None


def _predictions(client: MlflowClient, run_id: str) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        table = pd.read_csv(_download(client, run_id, PREDICTIONS, tmp), dtype={"slide_id": str})
    return table.set_index("slide_id", drop=False)


def _children(client: MlflowClient, parent: Run) -> list[Run]:
    query = f"tags.mlflow.parentRunId = '{parent.info.run_id}' and tags.`benchmark.role` = 'fold'"
    runs = client.search_runs([parent.info.experiment_id], query, max_results=1000)
    finished = [r for r in runs if r.info.status == "FINISHED"]
    return sorted(finished, key=lambda r: int(r.data.tags.get("benchmark.fold", 0)))


def resolve_fold_run(client: MlflowClient, run_id: str, slide_id: str) -> tuple[str, pd.DataFrame]:
    """The fold run ``run_id`` means for ``slide_id``, with its predictions table.

    Raises:
        ConfigError: no such run, a run that is neither a parent nor a fold run, or a parent none of whose
            finished folds tests ``slide_id``.
    """
    run = _get_run(client, run_id)
    role = run.data.tags.get("benchmark.role")
    if role == "fold":
        return run_id, _predictions(client, run_id)
    if role != "parent":
        raise ConfigError(
            f"--run {run_id}: not a `benchmark run` parent or fold run (tag benchmark.role={role!r}); "
            "pass the run id of a method (parent) or of one of its folds."
        )
    children = _children(client, run)
    if not children:
        raise ConfigError(
            f"--run {run_id}: the parent run has no finished fold; finish it with `benchmark run`."
        )
    seen: list[str] = []
    for child in children:
        table = _predictions(client, child.info.run_id)
        if slide_id in table.index:
            return child.info.run_id, table
        seen += list(table.index[:3])
    raise ConfigError(
        f"--slide {slide_id}: not a test slide of any finished fold of run {run_id} "
        f"({len(children)} folds); test slides are e.g. {', '.join(seen[:5])}."
    )


def load_checkpoint(client: MlflowClient, run_id: str, slide_id: str) -> FoldCheckpoint:
    """The checkpoint of the fold ``run_id`` resolves to for ``slide_id`` (see `resolve_fold_run`)."""
    fold_run, table = resolve_fold_run(client, run_id, slide_id)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = torch.load(_download(client, fold_run, CHECKPOINT, tmp), map_location="cpu", weights_only=True)
    standardize = None
    if "feature_mean" in ckpt:
        standardize = (ckpt["feature_mean"].numpy(), ckpt["feature_std"].numpy())
    return FoldCheckpoint(
        run_id=fold_run,
        fold=int(_get_run(client, fold_run).data.tags.get("benchmark.fold", -1)),
        config=config_from_dict(ckpt["config"]),
        state_dict=ckpt["state_dict"],
        standardize=standardize,
        test_slides=list(table.index),
        predictions=table,
    )
