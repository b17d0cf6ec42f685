"""The tuning objective: mean validation metric over folds, with the test slides out of reach.

Leak-proofing is structural. For each fold, `trainval_fold` builds a new `BagCollection` holding only
that fold's training and validation slides (`BagCollection.subset` copies their features), checks that
none of the fold's test slides made it in, and the objective hands it to `benchmark.run.train.fit_fold`,
the trainer's train-and-select function, which has no test path. The full collection never reaches model
code, and `benchmark.run.train.train_fold` (which tests) is never called during tuning.

Pruning: after each fold the fold's validation value is reported (``trial.report(value, step=fold)``)
and ``trial.should_prune()`` asked; `optuna.pruners.WilcoxonPruner` (the default) pairs the per-fold
values with the best trial's.

Notes:
    Per fold no test slide is ever seen, but with k-fold every slide is the test slide of one fold and a
    training or validation slide of the others, so the *choice* of hyperparameters (the mean over folds)
    has seen every slide — the usual "tune on the validation parts, report the test parts" protocol. It
    is the same for every method under the equal budget. For a test estimate untouched by the selection,
    tune on one fold (``--fold 0``) and report only that fold's test part (docs/tuning.md).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import optuna
import pandas as pd

from benchmark.core.config import CVConfig, DataConfig, RunConfig
from benchmark.core.errors import BenchmarkError
from benchmark.core.hashing import config_hash
from benchmark.cv.files import fold_indices
from benchmark.data import BagCollection
from benchmark.metrics.evaluate import EvaluationResult
from benchmark.run.outcome import FitResult
from benchmark.run.resolve import resolve_run_config
from benchmark.run.setup import fold_seed
from benchmark.run.train import fit_fold
from benchmark.tune.space import Overrides, SearchSpace

__all__ = ["FoldData", "FoldProvider", "Objective", "TrialFailed", "trainval_fold", "validation_score"]

log = logging.getLogger(__name__)

# Keep every fold's train+val copy in memory when they fit in this many bytes; beyond, rebuild per use.
_CACHE_BYTES = 2 << 30


class TrialFailed(RuntimeError):
    """A trial's training raised: Optuna records the trial as FAIL and the study goes on."""


@dataclass(frozen=True)
class FoldData:
    """One fold's tuning data: a collection without the fold's test slides.

    Attributes:
        fold: fold index in the split file.
        bags: the fold's training and validation slides only (training first).
        train, val: positions of the training and validation slides in ``bags``.
    """

    fold: int
    bags: BagCollection
    train: np.ndarray
    val: np.ndarray


def trainval_fold(bags: BagCollection, splits: pd.DataFrame, fold: int) -> FoldData:
    """The fold's training and validation slides as their own collection; test slides are left out."""
    parts = fold_indices(splits, bags.table(), fold)
    keep = np.concatenate([parts["train"], parts["val"]])
    subset = bags.subset(keep)
    test_ids = {bags.slide_ids[i] for i in parts["test"]}
    if test_ids.intersection(subset.slide_ids):  # cannot happen with a valid split file; guard the invariant
        raise RuntimeError(f"fold {fold}: a test slide reached the tuning subset; refusing to tune.")
    n_train = len(parts["train"])
    return FoldData(fold, subset, np.arange(n_train), np.arange(n_train, len(keep)))


class FoldProvider:
    """Builds `FoldData` on demand and keeps the copies while they fit in ``_CACHE_BYTES`` in total."""

    def __init__(self, bags: BagCollection, splits: pd.DataFrame, folds: Sequence[int]) -> None:
        self._bags, self._splits, self.folds = bags, splits, list(folds)
        per_fold = bags.features.nbytes  # upper bound of one fold's copy
        self._keep = per_fold * len(self.folds) <= _CACHE_BYTES
        self._cache: dict[int, FoldData] = {}

    def get(self, fold: int) -> FoldData:
        if fold in self._cache:
            return self._cache[fold]
        data = trainval_fold(self._bags, self._splits, fold)
        if self._keep:
            self._cache[fold] = data
        return data


def validation_score(result: EvaluationResult, metric: str) -> float:
    """The objective value of one fold: a validation metric such as ``fine.auc`` (NaN when undefined)."""
    flat = result.flat("val")
    if metric == "fine+coarse.accuracy":
        return float(flat["val.fine.accuracy"] + flat["val.coarse.accuracy"])
    value = flat.get(f"val.{metric}")
    return math.nan if value is None else float(value)


class TrialHooks:
    """What the objective reports (MLflow tracking and progress); the default does nothing."""

    def on_trial_start(self, trial: optuna.trial.Trial, config: RunConfig, overrides: Overrides) -> None: ...
    def on_fold(self, trial: optuna.trial.Trial, fold: int, fit: FitResult, value: float) -> None: ...
    def on_trial_end(
        self, trial: optuna.trial.Trial, state: str, value: float | None, error: str = ""
    ) -> None: ...


@dataclass
class Objective:
    """``objective(trial) -> mean validation metric`` for one model.

    Attributes:
        model: registry name.
        space: the model's search space.
        data, cv, seed: as in ``benchmark run`` (the folds are the run's folds).
        base: fixed overrides (the budget: epochs, patience; and any ``--set``); the space's suggestions
            are applied on top, then the base's own keys again so the budget cannot be searched away.
        folds: fold provider (train+val copies only).
        metric: validation metric to maximise (default ``fine.auc``).
        hooks: tracking/progress hooks.
    """

    model: str
    space: SearchSpace
    data: DataConfig
    cv: CVConfig
    seed: int
    base: Overrides
    folds: FoldProvider
    metric: str = "fine.auc"
    hooks: TrialHooks | None = None
    fit: Callable[..., FitResult] = fit_fold

    def resolve(self, trial: optuna.trial.BaseTrial) -> tuple[RunConfig, Overrides]:
        """The trial's overrides (base < space < base) and the resolved run config."""
        overrides = Overrides.combine(self.base, self.space(trial), self.base)
        config = resolve_run_config(
            self.model,
            data=self.data,
            cv=self.cv,
            seed=self.seed,
            overrides=overrides,
        )
        return config, overrides

    def __call__(self, trial: optuna.trial.Trial) -> float:
        hooks = self.hooks or TrialHooks()
        config, overrides = self.resolve(trial)
        # Stored so `benchmark run --params-from` replays exactly these overrides.
        trial.set_user_attr("overrides", overrides.to_dict())
        trial.set_user_attr("config_hash", config_hash(config))
        hooks.on_trial_start(trial, config, overrides)
        values: list[float] = []
        try:
            for fold in self.folds.folds:
                data = self.folds.get(fold)
                fit = self.fit(config, data.bags, data.train, data.val, seed=fold_seed(config.seed, fold))
                value = validation_score(fit.val, self.metric)
                values.append(value)
                hooks.on_fold(trial, fold, fit, value)
                trial.report(value, step=fold)
                if trial.should_prune():
                    hooks.on_trial_end(trial, "PRUNED", _mean(values))
                    raise optuna.TrialPruned(f"pruned after fold {fold}")
        except optuna.TrialPruned:
            raise
        except BaseException as exc:
            hooks.on_trial_end(trial, "FAIL", None, f"{type(exc).__name__}: {exc}")
            if isinstance(exc, BenchmarkError | KeyboardInterrupt):
                raise  # a user error or Ctrl-C stops the study (Optuna records the trial as FAIL)
            # Anything else (divergence, out of memory, a model bug) fails this trial; the study goes on.
            log.warning("trial %d failed: %s: %s", trial.number, type(exc).__name__, exc)
            raise TrialFailed(f"trial {trial.number}: {type(exc).__name__}: {exc}") from exc
        mean = _mean(values)
        hooks.on_trial_end(trial, "COMPLETE" if math.isfinite(mean) else "FAIL", mean)
        return mean


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan
