"""What a fold's child run holds: params, the split file as a dataset input, test metrics, per-class table,
confusion-matrix and ROC figures, predictions CSV and the selected checkpoint (config included)."""

from __future__ import annotations

import io
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow.data
import numpy as np
import pandas as pd
import torch
from mlflow.entities import DatasetInput, InputTag
from mlflow.tracking import MlflowClient

from benchmark.core.config import RunConfig
from benchmark.core.hashing import flatten
from benchmark.data import BagCollection
from benchmark.heatmap.make import fold_heatmaps
from benchmark.metrics.evaluate import per_class_table
from benchmark.metrics.figures import confusion_figure, figure_title, roc_figure
from benchmark.run.outcome import FoldOutcome
from benchmark.tracking.store import log_metrics, log_params

__all__ = ["log_fold_outcome", "log_fold_setup"]


def log_fold_setup(
    client: MlflowClient,
    run_id: str,
    config: RunConfig,
    bags: BagCollection,
    splits: pd.DataFrame,
    split_path: Path,
    fold: int,
    seed: int,
    parts: Mapping[str, np.ndarray],
) -> None:
    params: dict[str, object] = dict(flatten(config))
    params.update({"fold": fold, "fold_seed": seed, **{f"n_{k}": len(v) for k, v in parts.items()}})
    # Execution, not configuration: results of some models depend on the thread count (reduction order).
    params["compute.threads"] = torch.get_num_threads()
    log_params(client, run_id, params)
    # The split file as a dataset input: MLflow stores its digest, proving every method saw the same folds.
    with warnings.catch_warnings():  # MLflow warns that a local path matches two equivalent source types
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_pandas(
            splits, source=str(Path(split_path).resolve()), name=Path(split_path).name
        )
    entity = dataset._to_mlflow_entity()  # the client API takes entities; this is MLflow's own converter
    client.log_inputs(run_id, [DatasetInput(entity, tags=[InputTag("mlflow.data.context", f"fold_{fold}")])])


def _save_figure(client: MlflowClient, run_id: str, fig: plt.Figure, name: str) -> None:
    try:
        # 150 dpi: print resolution, as `benchmark compare --plot`
        client.log_figure(run_id, fig, name, save_kwargs={"dpi": 150})
    finally:
        plt.close(fig)


def log_fold_outcome(
    client: MlflowClient,
    run_id: str,
    config: RunConfig,
    bags: BagCollection,
    outcome: FoldOutcome,
    *,
    fold: int,
    heatmaps: int = 0,
) -> None:
    """Log a finished fold into its child run: metrics, per-class table, predictions, figures, checkpoint,
    and with ``heatmaps`` = K > 0 the attention heatmaps of the first K test slides in slide-id order
    (``figures/heatmap_<slide>.png``; none for models without attention)."""
    log_metrics(client, run_id, _fold_metrics(outcome))
    undefined = [f"{level}.{name}" for level, lm in outcome.test.levels.items() for name in lm.undefined]
    if undefined:
        client.set_tag(run_id, "benchmark.undefined_metrics", ",".join(undefined)[:5000])
    client.log_table(run_id, per_class_table(outcome.test), "per_class.json")
    client.log_text(run_id, _predictions_table(bags, outcome).to_csv(index=False), "predictions.csv")
    _log_figures(client, run_id, config, bags, outcome, fold)
    _log_checkpoint(client, run_id, config, outcome)
    for name, fig in fold_heatmaps(
        config,
        bags,
        outcome.state_dict,
        outcome.test_predictions.index,
        k=heatmaps,
        fold=fold,
        standardize=outcome.standardize,
    ):
        _save_figure(client, run_id, fig, name)


def _fold_metrics(outcome: FoldOutcome) -> dict[str, float]:
    """Test metrics, the selected epoch's validation metrics (``val_best.*``) and the compute budget."""
    metrics = outcome.test.flat("test")
    metrics.update(
        {
            f"val_best.{k.removeprefix('val.')}": v
            for k, v in outcome.val.flat("val").items()
            if k.count(".") == 2
        }
    )
    metrics.update(
        {
            "best_epoch": outcome.best_epoch,
            "epochs_run": outcome.epochs_run,
            "compute.n_params": outcome.n_params,
            "compute.seconds_per_fold": outcome.seconds,
            "compute.train_slides_per_s": outcome.train_slides_per_s,
            "compute.eval_slides_per_s": outcome.eval_slides_per_s,
            "compute.peak_memory_mb": outcome.peak_memory_mb,
            "compute.optimizer_steps": outcome.steps,
        }
    )
    return metrics


def _predictions_table(bags: BagCollection, outcome: FoldOutcome) -> pd.DataFrame:
    """One row per test slide: ids, true and predicted labels at every level and the class probabilities."""
    h = bags.hierarchy
    preds = outcome.test_predictions
    y_fine = bags.fine_labels[preds.index]
    table = pd.DataFrame(
        {
            "slide_id": [bags.slide_ids[i] for i in preds.index],
            "case_id": [bags.case_ids[i] for i in preds.index],
            "fine_true": [h.fine[i] for i in y_fine],
            "fine_pred": [h.fine[i] for i in preds.fine_probs.argmax(1)],
            **{f"p_fine.{c}": preds.fine_probs[:, k] for k, c in enumerate(h.fine)},
            "coarse_true": [h.coarse[i] for i in h.coarse_of(y_fine)],
            "coarse_pred": [h.coarse[i] for i in h.roll_up(preds.fine_probs).argmax(1)],
        }
    )
    if preds.coarse_head_probs is not None:
        table["coarse_head_pred"] = [h.coarse[i] for i in preds.coarse_head_probs.argmax(1)]
        for k, c in enumerate(h.coarse):
            table[f"p_coarse_head.{c}"] = preds.coarse_head_probs[:, k]
    return table


def _log_figures(
    client: MlflowClient, run_id: str, config: RunConfig, bags: BagCollection, outcome: FoldOutcome, fold: int
) -> None:
    """Confusion matrix and one-vs-rest ROC curves of every evaluated level (test part), titled
    "<model> · fold <k> · <level> level"; the ROC legends carry the logged per-class AUCs."""
    h = bags.hierarchy
    preds = outcome.test_predictions
    y_fine = bags.fine_labels[preds.index]
    scores: dict[str, np.ndarray | None] = {
        "fine": preds.fine_probs,
        "coarse": h.roll_up(preds.fine_probs),
        "coarse_head": preds.coarse_head_probs,
    }
    for level, names in (("fine", h.fine), ("coarse", h.coarse), ("coarse_head", h.coarse)):
        probs = scores[level]
        if level not in outcome.test.levels or probs is None:
            continue
        metrics = outcome.test.levels[level]
        title = figure_title(config.model, fold, level)
        fig = confusion_figure(metrics.confusion, names, f"{title}\ntest set (n = {len(y_fine)})")
        _save_figure(client, run_id, fig, f"figures/confusion_{level}.png")
        y = y_fine if level == "fine" else h.coarse_of(y_fine)
        fig = roc_figure(y, probs, names, title, metrics=metrics)
        _save_figure(client, run_id, fig, f"figures/roc_{level}.png")


def _log_checkpoint(client: MlflowClient, run_id: str, config: RunConfig, outcome: FoldOutcome) -> None:
    """The selected state dict with its config (and feature statistics) as ``checkpoint.pt``."""
    buffer = io.BytesIO()
    # Plain tensors and builtins only, so the checkpoint loads with torch.load(weights_only=True).
    checkpoint = {
        "state_dict": outcome.state_dict,
        "config": config.to_dict(),
        "best_epoch": outcome.best_epoch,
    }
    if outcome.standardize is not None:  # the training-part feature statistics the model expects
        checkpoint["feature_mean"], checkpoint["feature_std"] = (
            torch.from_numpy(a) for a in outcome.standardize
        )
    torch.save(checkpoint, buffer)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "checkpoint.pt"
        path.write_bytes(buffer.getvalue())
        client.log_artifact(run_id, str(path))
