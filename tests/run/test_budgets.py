"""Equal optimiser budgets by default, the reference preset, and dataset-recommended protocols."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from benchmark.core.config import BUDGET_FIELDS, CVConfig, DataConfig
from benchmark.core.errors import ConfigError
from benchmark.core.hashing import config_hash
from benchmark.core.overrides import Overrides
from benchmark.models import MODELS, ensure_registered, register_model
from benchmark.run.resolve import log_dataset_protocol, resolve_run_config

ensure_registered()


def _config(model, data="panda-sim", **train):
    return resolve_run_config(
        model,
        data=DataConfig(name=data),
        cv=CVConfig(),
        seed=0,
        overrides=Overrides(train={k: str(v) for k, v in train.items()}),
    )


def _budget(config):
    return tuple(getattr(config.train, f) for f in BUDGET_FIELDS)


def test_default_run_gives_every_method_the_same_budget():
    budgets = {m: _budget(_config(m)) for m in MODELS.names()}
    assert len(set(budgets.values())) == 1, budgets
    assert all(_config(m).train.preset == "equal" for m in MODELS.names())
    assert _config("hmil").train.batch_size == _config("abmil").train.batch_size == 16


def test_model_recipes_stay_per_model():
    assert (_config("hmil").train.lr, _config("hmil").train.optimizer) == (1e-4, "adam")
    assert (_config("abmil").train.lr, _config("abmil").train.optimizer) == (2e-4, "adamw")


def test_reference_preset_restores_each_models_reference_budget():
    assert _config("hmil", preset="reference").train.batch_size == 64
    assert _config("hmil-pc", preset="reference").train.batch_size == 64
    for model in ("abmil", "clam-sb", "clam-mb", "transmil", "dsmil", "dtfd"):
        assert _config(model, preset="reference").train.batch_size == 1
    assert _config("meanpool", preset="reference").train.batch_size == 16  # no reference: the harness's


def test_explicit_overrides_win_over_the_preset_and_the_label_is_not_hashed():
    assert _config("hmil", preset="reference", batch_size=8).train.batch_size == 8
    equal, reference = _config("meanpool"), _config("meanpool", preset="reference")
    assert reference.train.preset == "reference"
    assert config_hash(equal) == config_hash(reference)  # same resolved config, same result
    assert config_hash(_config("hmil")) != config_hash(_config("hmil", preset="reference"))


def test_unknown_preset_is_a_user_error():
    with pytest.raises(ConfigError, match="train.preset must be one of equal, reference"):
        _config("abmil", preset="paper")


def test_models_may_not_register_budget_fields_as_defaults():
    @dataclass(frozen=True)
    class Cfg:
        width: int = 1

    with pytest.raises(TypeError, match="budget fields"):
        register_model("budget-cheat", config=Cfg, description="x", train_defaults={"batch_size": 64})
    with pytest.raises(TypeError, match="reference_train may only set"):
        register_model("budget-cheat", config=Cfg, description="x", reference_train={"lr": 1.0})
    assert "budget-cheat" not in MODELS


def test_classical_sets_use_ilse_protocol_unless_overridden():
    train = _config("abmil", data="musk1").train
    assert (
        train.standardize,
        train.batch_size,
        train.lr,
        train.weight_decay,
        train.optimizer,
        train.epochs,
        train.patience,
    ) == (True, 1, 5e-4, 5e-4, "adam", 100, 20)
    assert _config("abmil", data="musk1", lr=1e-3).train.lr == 1e-3
    # Equal budgets hold on these sets too: the protocol applies to every method alike.
    assert len({_budget(_config(m, data="musk1")) for m in ("abmil", "hmil", "transmil")}) == 1
    assert _config("abmil", data="panda-sim").train.standardize is False  # no protocol registered


def test_the_protocol_is_announced_in_one_log_line(caplog):
    with caplog.at_level(logging.INFO, logger="benchmark.run.resolve"):
        log_dataset_protocol(DataConfig(name="musk1"), {"epochs": "3"}, CVConfig(n_folds=10))
        log_dataset_protocol(DataConfig(name="panda-sim"), {}, CVConfig())
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert "Ilse et al. 2018" in lines[0] and "batch_size=1" in lines[0] and "epochs=" not in lines[0]
    assert "10-fold CV" in lines[0]


@pytest.mark.parametrize(
    ("dataset", "folds", "expected"), [("musk1", None, 10), ("panda-sim", None, 5), ("musk1", 3, 3)]
)
def test_the_dataset_recommends_its_cv_unless_folds_are_given(dataset, folds, expected):
    from benchmark.cli.args import build_parser
    from benchmark.cli.requests import run_request

    argv = ["run", "--dataset", dataset] + ([] if folds is None else ["--folds", str(folds)])
    args = build_parser("test")[0].parse_args(argv)
    assert run_request(args).cv.n_folds == expected
