"""What ``benchmark tune`` is asked (`TuneRequest`), what it reports (`TuneObserver`) and returns (`StudySummary`)."""

from __future__ import annotations

from dataclasses import dataclass

import optuna

from benchmark.core.errors import ConfigError
from benchmark.run.request import RunRequest
from benchmark.tune.storage import DEFAULT_STORAGE, quiet_experimental

__all__ = ["PRUNERS", "StudySummary", "TuneObserver", "TuneRequest", "make_pruner", "study_name"]

PRUNERS = ("wilcoxon", "median", "none")


@dataclass(frozen=True, kw_only=True)
class TuneRequest(RunRequest):
    """What ``benchmark tune`` was asked to do: a `RunRequest` (models, data, cv, seed, fixed overrides,
    tracking, folds, threads) plus the study's settings.

    Attributes:
        trials: trials to add in this invocation (additive: 4 then 2 gives a 6-trial study).
        timeout: stop starting new trials after this many seconds (per worker).
        storage: Optuna storage URL (default ``sqlite:///optuna.db``); see `benchmark.tune.storage`.
        study: study name (one model) or prefix (several: ``<study>-<model>``); default ``<dataset>-<model>``.
        workers: local worker processes sharing the study (> 1 needs a server or journal storage).
        metric: validation metric maximised (mean over folds).
        pruner: "wilcoxon" (default), "median" or "none".
        heartbeat, grace, max_retry: RDB heartbeat interval and grace period (s), retries of a dead trial.
        default_trial: enqueue the model's default configuration as trial 0 of a new study.

    ``models`` are one study each, all with the same budget; ``overrides`` are fixed for every trial;
    ``threads`` is per worker (default: 1 with several workers, else the CPUs this process may use).
    """

    trials: int
    timeout: float | None = None
    storage: str | None = None
    study: str | None = None
    workers: int = 1
    metric: str = "fine.auc"
    pruner: str = "wilcoxon"
    heartbeat: int = 60
    grace: int | None = None
    max_retry: int = 3
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
