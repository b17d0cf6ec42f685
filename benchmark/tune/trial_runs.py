"""MLflow for studies: one experiment per study (``tune-<study>``), one run per trial.

A trial's run carries the tags ``optuna.study``, ``optuna.trial``, ``optuna.state`` (RUNNING, COMPLETE,
PRUNED, FAIL), ``optuna.worker`` (host:pid) and, for a retried trial, ``optuna.retry_of``; the resolved
config as params (plus derived search parameters such as ``clam.bag_weight``) and the budget as
``budget.*`` params; per-fold validation metrics as stepped metrics (step = fold index) and the objective
value. Pruned and completed trials end FINISHED, failed ones FAILED. At the end of every invocation
`finalize_study_runs` closes the runs of trials whose worker died (Optuna's state wins) and moves the
``optuna.best=true`` tag to the study's best trial.
"""

from __future__ import annotations

import json
import math
import os
import socket
from collections.abc import Mapping

import optuna
from mlflow.tracking import MlflowClient

from benchmark.core.config import RunConfig
from benchmark.core.hashing import config_hash, flatten
from benchmark.run.outcome import FitResult
from benchmark.tracking.store import ensure_experiment, log_metrics, log_params
from benchmark.tune.objective import TrialHooks
from benchmark.tune.space import Overrides
from benchmark.tune.storage import retried_trial_number

__all__ = ["MlflowTrialHooks", "experiment_name", "finalize_study_runs", "study_experiment"]

_RUN_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED"}


def experiment_name(study_name: str) -> str:
    return f"tune-{study_name}"


def study_experiment(client: MlflowClient, study_name: str, budget: Mapping[str, object]) -> str:
    """Create (or reuse) the study's experiment and record the budget as experiment tags."""
    exp_id = ensure_experiment(client, experiment_name(study_name))
    client.set_experiment_tag(exp_id, "optuna.study", study_name)
    for key, value in budget.items():
        client.set_experiment_tag(exp_id, f"budget.{key}", str(value))
    return exp_id


class MlflowTrialHooks(TrialHooks):
    """Logs each trial as an MLflow run (see the module docstring)."""

    def __init__(
        self,
        client: MlflowClient,
        exp_id: str,
        study_name: str,
        budget: Mapping[str, object],
        inner: TrialHooks | None = None,
    ) -> None:
        self.client, self.exp_id, self.study_name = client, exp_id, study_name
        self.budget = dict(budget)
        self.inner = inner or TrialHooks()
        self._runs: dict[int, str] = {}

    def on_trial_start(self, trial: optuna.trial.Trial, config: RunConfig, overrides: Overrides) -> None:
        tags = {
            "optuna.study": self.study_name,
            "optuna.trial": str(trial.number),
            "optuna.state": "RUNNING",
            "optuna.worker": f"{socket.gethostname()}:{os.getpid()}",
            "optuna.params": json.dumps(trial.params, sort_keys=True)[:5000],
            "benchmark.method": config.model,
            "benchmark.dataset": config.data.name,
            "benchmark.config_hash": config_hash(config),
            "benchmark.role": "trial",
        }
        # The frozen trial's system attrs hold the retry history (public API: look it up by number).
        frozen = next((t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number), None)
        original = retried_trial_number(frozen) if frozen is not None else None
        if original is not None:
            tags["optuna.retry_of"] = str(original)
        run = self.client.create_run(self.exp_id, tags=tags, run_name=f"trial-{trial.number}")
        self._runs[trial.number] = run.info.run_id
        params: dict[str, object] = dict(flatten(config))
        params.update({k: str(v) for k, v in trial.params.items() if k not in params})
        params.update({f"budget.{k}": v for k, v in self.budget.items()})
        log_params(self.client, run.info.run_id, params)
        self.client.log_dict(run.info.run_id, overrides.to_dict(), "overrides.json")
        self.inner.on_trial_start(trial, config, overrides)

    def on_fold(self, trial: optuna.trial.Trial, fold: int, fit: FitResult, value: float) -> None:
        run_id = self._runs[trial.number]
        metrics = {k: v for k, v in fit.val.flat("val").items() if k.count(".") == 2}
        metrics.update({"objective.fold": value, "best_epoch": fit.best_epoch, "epochs_run": fit.epochs_run})
        log_metrics(self.client, run_id, metrics, step=fold)
        self.inner.on_fold(trial, fold, fit, value)

    def on_trial_end(
        self, trial: optuna.trial.Trial, state: str, value: float | None, error: str = ""
    ) -> None:
        run_id = self._runs.pop(trial.number, None)
        if run_id is not None:
            self.client.set_tag(run_id, "optuna.state", state)
            if error:
                self.client.set_tag(run_id, "optuna.error", error[:5000])
            if value is not None and math.isfinite(value):
                log_metrics(self.client, run_id, {"objective": value})
            self.client.set_terminated(run_id, _RUN_STATUS[state])
        self.inner.on_trial_end(trial, state, value, error)


def finalize_study_runs(client: MlflowClient, exp_id: str, study: optuna.Study) -> str | None:
    """Close runs of trials that died (Optuna's state wins) and tag the best trial; returns its run id."""
    states = {t.number: t.state.name for t in study.get_trials(deepcopy=False)}
    runs = client.search_runs([exp_id], "tags.\"benchmark.role\" = 'trial'", max_results=50000)
    for run in runs:
        number = int(run.data.tags.get("optuna.trial", -1))
        state = states.get(number)
        if run.info.status == "RUNNING" and state in _RUN_STATUS:
            client.set_tag(run.info.run_id, "optuna.state", state)
            client.set_tag(run.info.run_id, "optuna.note", "closed by a later invocation: its worker died")
            client.set_terminated(run.info.run_id, _RUN_STATUS[state])
        if (
            state is not None
            and run.data.tags.get("optuna.state") not in (state, "RUNNING")
            and state in _RUN_STATUS
        ):
            client.set_tag(run.info.run_id, "optuna.state", state)  # e.g. a stale trial Optuna failed
    try:
        best = study.best_trial
    except ValueError:  # no completed trial yet
        return None
    best_run = None
    for run in runs:
        is_best = run.data.tags.get("optuna.trial") == str(best.number) and run.info.status == "FINISHED"
        if is_best:
            best_run = run.info.run_id
        if run.data.tags.get("optuna.best") == "true" and not is_best:
            client.set_tag(run.info.run_id, "optuna.best", "false")
    if best_run is not None:
        client.set_tag(best_run, "optuna.best", "true")
        client.set_experiment_tag(exp_id, "optuna.best_trial", str(best.number))
        client.set_experiment_tag(exp_id, "optuna.best_value", repr(best.value))
    return best_run
