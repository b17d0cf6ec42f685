"""What ``benchmark tune`` is asked (`TuneRequest`), what it reports (`TuneObserver`) and returns (`StudySummary`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import optuna

from benchmark.core.config import CVConfig, DataConfig
from benchmark.core.errors import ConfigError
from benchmark.tune.storage import DEFAULT_STORAGE, quiet_experimental

__all__ = ["PRUNERS", "StudySummary", "TuneObserver", "TuneRequest", "make_pruner", "study_name"]

PRUNERS = ("wilcoxon", "median", "none")


@dataclass(frozen=True)
class TuneRequest:
    """What ``benchmark tune`` was asked to do (fields as in `benchmark.run.runner.RunRequest` where shared).

    Attributes:
        models: registry names, or ["all"]: one study per model, all with the same budget.
        trials: trials to add in this invocation (additive: 4 then 2 gives a 6-trial study).
        timeout: stop starting new trials after this many seconds (per worker).
        storage: Optuna storage URL (default ``sqlite:///optuna.db``); see `benchmark.tune.storage`.
        study: study name (one model) or prefix (several: ``<study>-<model>``); default ``<dataset>-<model>``.
        workers: local worker processes sharing the study (> 1 needs a server or journal storage).
        train_overrides, model_overrides, loss_overrides: fixed ``--set`` values (epochs, patience...).
        metric: validation metric maximised (mean over folds).
        pruner: "wilcoxon" (default), "median" or "none".
        folds: fold indices used by the objective (default: all folds of the protocol).
        heartbeat, grace, max_retry: RDB heartbeat interval and grace period (s), retries of a dead trial.
        threads: torch CPU threads per worker (default: 1 with several workers, else torch's choice).
        default_trial: enqueue the model's default configuration as trial 0 of a new study.
    """

    models: Sequence[str]
    trials: int
    data: DataConfig = field(default_factory=DataConfig)
    cv: CVConfig = field(default_factory=CVConfig)
    seed: int = 0
    timeout: float | None = None
    storage: str | None = None
    study: str | None = None
    workers: int = 1
    train_overrides: Mapping[str, str] = field(default_factory=dict)
    model_overrides: Mapping[str, str] = field(default_factory=dict)
    loss_overrides: Mapping[str, str] = field(default_factory=dict)
    metric: str = "fine.auc"
    pruner: str = "wilcoxon"
    folds: Sequence[int] | None = None
    tracking_uri: str | None = None
    splits_root: str = "splits"
    splits_file: str | None = None
    new_splits: bool = False
    heartbeat: int = 60
    grace: int | None = None
    max_retry: int = 3
    threads: int | None = None
    default_trial: bool = True

    @property
    def storage_url(self) -> str:
        return self.storage or DEFAULT_STORAGE


@dataclass
class StudySummary:
    """The state of one study after an invocation."""

    model: str
    study: str
    storage: str
    experiment: str
    states: dict[str, int]
    best_trial: int | None
    best_value: float | None
    best_params: dict[str, object]
    budget: dict[str, object]


class TuneObserver:
    """Progress hooks (the CLI renders them with rich; the library only logs)."""

    def on_study_start(self, model: str, study: str, new_trials: int, existing: int) -> None: ...
    def on_fold(self, model: str, trial: int, fold: int, value: float) -> None: ...
    def on_trial_end(self, model: str, trial: int, state: str, value: float | None) -> None: ...
    def on_study_end(self, summary: StudySummary) -> None: ...


def study_name(request: TuneRequest, model: str, n_models: int) -> str:
    if request.study is None:
        return f"{request.data.name}-{model}"
    return request.study if n_models == 1 else f"{request.study}-{model}"


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """``wilcoxon`` (paired per-fold test vs the best trial), ``median`` or ``none``."""
    if name == "wilcoxon":
        with quiet_experimental():
            return optuna.pruners.WilcoxonPruner(p_threshold=0.1, n_startup_steps=2)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"--pruner {name!r} is unknown; use one of {', '.join(PRUNERS)}.")
