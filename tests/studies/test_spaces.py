"""Every registered model has a search space; every space builds and resolves through `benchmark run`'s path."""

from __future__ import annotations

import optuna
import pytest

from benchmark.core.config import BUDGET_FIELDS, CVConfig, DataConfig
from benchmark.core.errors import UnknownNameError
from benchmark.core.hashing import config_hash
from benchmark.core.hierarchy import Hierarchy
from benchmark.models import MODELS, build_model, ensure_registered
from benchmark.run.resolve import resolve_run_config
from benchmark.tune.engine import default_params
from benchmark.tune.space import SPACE_MODULES, SPACES, Overrides, space_for

ensure_registered()
ALL_MODELS = MODELS.names()


def _resolve(model: str, overrides: Overrides):
    return resolve_run_config(
        model,
        data=DataConfig(),
        cv=CVConfig(),
        seed=0,
        overrides=overrides,
    )


def test_every_registered_model_has_a_space():
    space_for(ALL_MODELS[0])  # imports the space modules
    assert set(SPACES.names()) == set(ALL_MODELS)
    assert len(SPACE_MODULES) == 7  # one module per family


@pytest.mark.parametrize("model", ALL_MODELS)
def test_space_builds_and_resolves(model):
    """Sampled trials (TPE, in memory) give overrides `resolve_run_config` accepts and the model builds."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    space = space_for(model)
    hierarchy = Hierarchy(["a", "b", "c"], ["x", "y"], [0, 1, 1])
    for _ in range(4):
        trial = study.ask()
        overrides = space(trial)
        assert set(overrides.to_dict()) == {"train", "model", "loss"}
        config = _resolve(model, overrides)
        for key, value in overrides.flat().items():  # every suggestion reaches the config
            section, _, name = key.partition(".")
            if section == "train":
                assert str(getattr(config.train, name)) == value
            elif section == "model":
                assert str(config.model_params[name]).lower() == value.lower()
        build_model(model, config.model_params, in_dim=8, hierarchy=hierarchy)
        # The budget (bags per step, epochs, stopping rule, selection) is shared by every method: never searched.
        assert not set(overrides.train) & set(BUDGET_FIELDS)
        study.tell(trial, 0.5)


@pytest.mark.parametrize("model", ALL_MODELS)
def test_default_trial_reproduces_the_default_config(model):
    """Trial 0 of a new study (the enqueued defaults) is exactly the model's default configuration."""
    default = _resolve(model, Overrides())
    trial = optuna.trial.FixedTrial(default_params(default))
    assert config_hash(_resolve(model, space_for(model)(trial))) == config_hash(default)


def test_unknown_model_lists_valid_names():
    with pytest.raises(
        UnknownNameError, match=r"unknown model 'abmill'.*valid names: .*abmil.*Did you mean 'abmil'"
    ):
        space_for("abmill")


def test_overrides_round_trip_through_json():
    o = Overrides(train={"lr": "0.0003"}, model={"dropout": "0.1"}, loss={"supcon.weight": "0.5"})
    assert Overrides.from_dict(o.to_dict()) == o
    assert Overrides.combine(o, Overrides(train={"lr": "1e-4"})).train == {"lr": "1e-4"}
    assert o.flat() == {"train.lr": "0.0003", "model.dropout": "0.1", "loss.supcon.weight": "0.5"}
