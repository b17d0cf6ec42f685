"""`benchmark tune` with the default (SQLite) store: resume, budget, MLflow layout, failures, pruning, params-from."""

from __future__ import annotations

import math
import re

import optuna
import pytest
from mlflow.tracking import MlflowClient

import benchmark.run.encoders
from benchmark.cli.main import main
from benchmark.core.config import CVConfig, DataConfig
from benchmark.core.errors import ConfigError
from benchmark.tune.objective import FoldProvider, Objective, TrialHooks
from benchmark.tune.space import Overrides, space_for
from benchmark.tune.storage import open_storage, retry_callback_class, storage_kind
from tests.tune.conftest import tune_args


def _study(tmp, name="panda-sim-abmil") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp}/optuna.db")


def _trial_runs(tmp, study="panda-sim-abmil"):
    client = MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    exp = client.get_experiment_by_name(f"tune-{study}")
    return client, exp, client.search_runs([exp.experiment_id])


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """abmil: 2 trials, then a resume with --trials 1 → 3 trials in one study."""
    tmp = tmp_path_factory.mktemp("tune")
    assert main(tune_args(tmp, "--model", "abmil", "--trials", "2", "--pruner", "none")) == 0
    assert len(_study(tmp).trials) == 2
    assert main(tune_args(tmp, "--model", "abmil", "--trials", "1", "--pruner", "none")) == 0
    return tmp


def test_resume_adds_trials_and_records_the_budget(tuned):
    study = _study(tuned)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    assert study.trials[0].user_attrs["source"] == "model defaults"  # trial 0 = the model's defaults
    assert study.user_attrs["budget.trials_requested"] == 3
    budget = study.user_attrs["budget"]
    assert (budget["epochs"], budget["patience"], budget["folds"], budget["metric"]) == (
        1,
        5,
        "0,1",
        "fine.auc",
    )
    for t in study.trials:  # each fold reported for pruning
        assert sorted(t.intermediate_values) == [0, 1]
        assert t.value == pytest.approx(sum(t.intermediate_values.values()) / 2)


def test_each_trial_is_a_tagged_mlflow_run_and_the_best_is_tagged(tuned):
    client, exp, runs = _trial_runs(tuned)
    study = _study(tuned)
    assert exp.tags["budget.epochs"] == "1" and exp.tags["budget.trials_requested"] == "3"
    assert sorted(int(r.data.tags["optuna.trial"]) for r in runs) == [0, 1, 2]
    for run in runs:
        trial = study.trials[int(run.data.tags["optuna.trial"])]
        assert run.data.tags["optuna.study"] == "panda-sim-abmil"
        assert run.data.tags["optuna.state"] == "COMPLETE" and run.info.status == "FINISHED"
        assert run.data.params["train.lr"] == trial.user_attrs["overrides"]["train"]["lr"]
        assert run.data.params["budget.epochs"] == "1"
        assert run.data.metrics["objective"] == pytest.approx(trial.value)
        history = client.get_metric_history(run.info.run_id, "val.fine.auc")
        assert sorted(m.step for m in history) == [0, 1]  # per-fold validation metrics, step = fold
    best = [r for r in runs if r.data.tags.get("optuna.best") == "true"]
    assert len(best) == 1 and best[0].data.tags["optuna.trial"] == str(study.best_trial.number)


def test_run_params_from_reproduces_the_best_parameters(tuned):
    study = _study(tuned)
    best = study.best_trial
    args = [a for a in tune_args(tuned) if a not in ("tune",)]
    drop = {"--threads"}
    run_args = []
    i = 0
    while i < len(args):  # reuse the data/split/store options; --storage is shared by run
        if args[i] in drop:
            i += 2
            continue
        run_args.append(args[i])
        i += 1
    assert main(["run", *run_args, "--threads", "1", "--params-from", "panda-sim-abmil", "--no-compare"]) == 0
    client = MlflowClient(f"sqlite:///{tuned}/mlflow.db")
    exp = client.get_experiment_by_name("panda-sim")
    parents = client.search_runs([exp.experiment_id], "tags.\"benchmark.role\" = 'parent'")
    assert len(parents) == 1
    parent = parents[0]
    assert parent.data.tags["benchmark.method"] == "abmil-tuned"
    assert parent.data.tags["benchmark.params_from.study"] == "panda-sim-abmil"
    assert parent.data.tags["benchmark.params_from.trial"] == str(best.number)
    for key, value in best.params.items():  # Optuna's values …
        assert parent.data.params[key] == str(value)
    overrides = Overrides.from_dict(best.user_attrs["overrides"])
    for key, value in overrides.flat().items():  # … and the exact override strings
        assert parent.data.params[key] == value
    assert parent.data.params["train.epochs"] == "1"


def test_resume_with_another_budget_is_refused(tuned, capsys):
    assert (
        main(tune_args(tuned, "--model", "abmil", "--trials", "1", "--pruner", "none", "--patience", "2"))
        == 2
    )
    err = capsys.readouterr().err
    assert "study panda-sim-abmil was created with another budget" in err and "patience=5" in err


def test_models_all_style_list_gets_equal_budgets(tmp_path):
    assert main(tune_args(tmp_path, "--models", "meanpool,maxpool", "--trials", "1", "--study", "eq")) == 0
    budgets = [_study(tmp_path, f"eq-{m}").user_attrs for m in ("meanpool", "maxpool")]
    for key in ("epochs", "patience", "folds", "metric", "split_digest"):
        assert budgets[0]["budget"][key] == budgets[1]["budget"][key]
    assert budgets[0]["budget.trials_requested"] == budgets[1]["budget.trials_requested"] == 1


def test_failed_trial_is_recorded_and_the_study_goes_on(tmp_path, monkeypatch):
    real_build = benchmark.run.encoders.build_model
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("simulated divergence")
        return real_build(*args, **kwargs)

    monkeypatch.setattr(benchmark.run.encoders, "build_model", flaky)
    assert main(tune_args(tmp_path, "--model", "meanpool", "--trials", "2", "--pruner", "none")) == 0
    study = _study(tmp_path, "panda-sim-meanpool")
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"]
    _, _, runs = _trial_runs(tmp_path, "panda-sim-meanpool")
    failed = [r for r in runs if r.data.tags["optuna.trial"] == "0"][0]
    assert failed.info.status == "FAILED" and failed.data.tags["optuna.state"] == "FAIL"
    assert "simulated divergence" in failed.data.tags["optuna.error"]


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


class _Recorder(TrialHooks):
    def __init__(self):
        self.ends = []

    def on_trial_end(self, trial, state, value, error=""):
        self.ends.append((trial.number, state))


def test_pruned_trial_stops_after_its_first_fold(tmp_path):
    from benchmark.cv.files import get_or_create_splits
    from benchmark.data import load_dataset

    data = DataConfig(name="panda-sim", scale=0.2, cache_dir=str(tmp_path / "cache"))
    cv = CVConfig(n_folds=2)
    bags = load_dataset(data)
    splits, _, _ = get_or_create_splits(tmp_path / "splits", bags.name, bags.table(), cv)
    fits = []

    class _Fit:
        def __init__(self):
            import numpy as np

            from benchmark.metrics.evaluate import evaluate

            y = np.array([0, 1, 2, 3, 4, 5] * 2)
            self.val = evaluate(y, np.eye(6)[y] * 0.5 + 0.5 / 6, bags.hierarchy)

    def fake_fit(config, fold_bags, train, val, *, seed):
        fits.append(seed)
        return _Fit()

    hooks = _Recorder()
    objective = Objective(
        model="meanpool",
        space=space_for("meanpool"),
        data=data,
        cv=cv,
        seed=0,
        base=Overrides(),
        folds=FoldProvider(bags, splits, [0, 1]),
        hooks=hooks,
        fit=fake_fit,
    )
    study = optuna.create_study(direction="maximize", pruner=_AlwaysPrune())
    study.optimize(objective, n_trials=1)
    assert study.trials[0].state.name == "PRUNED" and len(fits) == 1
    assert hooks.ends == [(0, "PRUNED")]


def test_workers_need_a_concurrent_storage(tmp_path, capsys):
    assert main(tune_args(tmp_path, "--model", "abmil", "--trials", "2", "--workers", "2")) == 2
    err = capsys.readouterr().err
    assert "--workers 2 needs a storage" in err and "postgresql://" in err and "journal:" in err


def test_storage_urls_and_retry_callback_names(tmp_path):
    assert storage_kind("sqlite:///x.db") == "sqlite" and storage_kind("journal:x.log") == "journal"
    assert storage_kind("postgresql://u:p@h/db") == "server"
    with pytest.raises(ConfigError, match="is not a storage URL"):
        storage_kind("redis://h")
    with pytest.raises(ConfigError, match="does not exist"):
        open_storage(f"sqlite:///{tmp_path}/missing/o.db")
    assert retry_callback_class().__name__ in ("RetryHeartbeatStaleTrialCallback", "RetryFailedTrialCallback")
    journal = open_storage(f"journal:{tmp_path}/o.log")
    study = optuna.create_study(storage=journal, study_name="j")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert (
        len(optuna.load_study(study_name="j", storage=open_storage(f"journal:{tmp_path}/o.log")).trials) == 2
    )
    assert not math.isnan(study.best_value)


def test_params_from_unknown_study_lists_the_studies(tuned, capsys):
    code = main(
        [
            "run",
            "--dataset",
            "panda-sim",
            "--params-from",
            "nope",
            "--storage",
            f"sqlite:///{tuned}/optuna.db",
        ]
    )
    assert code == 2 and "no such study in" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--model", "abmil", "--trials", "0"), "--trials must be ≥ 1, got 0"),
        (
            ("--model", "abmil", "--trials", "1", "--metric", "fine.auroc"),
            "--metric 'fine.auroc' is not a validation",
        ),
        (("--model", "abmill", "--trials", "1"), "unknown model 'abmill'.*Did you mean 'abmil'"),
        (("--model", "abmil", "--trials", "1", "--storage", "redis://h"), "is not a storage URL"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, capsys, extra, message):
    assert main(tune_args(tmp_path, *extra)) == 2
    # stderr also carries progress logs (stdout stays clean for --format json); the error is one line.
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and re.search(message, errors[0])
