"""What training produces: `FitResult` (a model selected on validation, no test involved) and `FoldOutcome`
(everything a fold produced, test included; the tracker logs it)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from benchmark.core.contract import MILModel
from benchmark.metrics.evaluate import EvaluationResult
from benchmark.run.inference import Predictions

__all__ = ["FitResult", "FoldOutcome"]


@dataclass
class FitResult:
    """A trained model selected on validation: what `fit_fold` returns (no test part involved).

    Attributes:
        model: the model with the selected (best validation) weights loaded, in eval mode.
        best_epoch, epochs_run, history: selection epoch, epochs trained, per-epoch records.
        val: validation metrics of the selected checkpoint.
        state_dict: the selected weights.
        standardize: training-part feature statistics (``train.standardize``), or None.
        train_seconds, eval_seconds: time spent training and evaluating validation.
        n_val_evaluated: validation slides evaluated in total (epochs × val size).
        steps: optimiser steps taken (the budget actually spent; early stopping ends it sooner).
    """

    model: MILModel
    best_epoch: int
    epochs_run: int
    history: list[dict[str, float]]
    val: EvaluationResult
    state_dict: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)
    standardize: tuple[np.ndarray, np.ndarray] | None = None
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    n_val_evaluated: int = 0
    steps: int = 0


@dataclass
class FoldOutcome:
    """Everything a fold produced; the tracker logs it."""

    best_epoch: int
    epochs_run: int
    history: list[dict[str, float]]
    val: EvaluationResult
    test: EvaluationResult
    test_predictions: Predictions
    n_params: int
    seconds: float
    train_slides_per_s: float
    eval_slides_per_s: float
    peak_memory_mb: float
    steps: int = 0
    state_dict: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)
    standardize: tuple[np.ndarray, np.ndarray] | None = None
