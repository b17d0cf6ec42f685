"""Runs from a file (`benchmark.run.config_file`) and the typed path of CLI values into the run config."""

from __future__ import annotations

import json

import pytest

from benchmark.cli.args import build_parser
from benchmark.cli.requests import run_request
from benchmark.core.config import DataConfig, TrainConfig
from benchmark.core.errors import ConfigError
from benchmark.core.hashing import config_hash
from benchmark.core.overrides import apply_overrides
from benchmark.run.config_file import load_request
from benchmark.run.runner import resolve_configs

TOML = """
models = ["abmil"]
seed = 3

[data]
name = "panda-sim"
scale = 1

[cv]
n_folds = 4

[train]
epochs = 7
batch_size = 8
lr = 1e-3

[model_params]
dropout = 0

[[loss]]
name = "fine_ce"
weight = 0.5
"""


def _args(*argv):
    return build_parser("test")[0].parse_args(["run", *argv])


def test_a_toml_file_becomes_a_typed_request(tmp_path):
    path = tmp_path / "experiment.toml"
    path.write_text(TOML)
    request = load_request(path)
    assert list(request.models) == ["abmil"] and request.seed == 3 and request.cv.n_folds == 4
    assert request.data.scale == 1.0 and isinstance(request.data.scale, float)  # TOML int → the float field
    (config,) = resolve_configs(request).values()
    assert (config.train.epochs, config.train.batch_size, config.train.lr) == (7, 8, 1e-3)
    assert config.model_params["dropout"] == 0.0 and config.loss[0].weight == 0.5


def test_cli_options_win_over_the_file(tmp_path):
    path = tmp_path / "experiment.toml"
    path.write_text(TOML)
    request = run_request(
        _args("--config", str(path), "--epochs", "2", "--folds", "3", "--set", "train.lr=0.01")
    )
    (config,) = resolve_configs(request).values()
    assert (config.train.epochs, config.train.batch_size, config.train.lr, config.cv.n_folds) == (
        2,
        8,
        0.01,
        3,
    )
    assert request.seed == 3 and request.data.name == "panda-sim"  # not given on the command line: the file's


def test_a_logged_config_json_resolves_to_the_same_hash(tmp_path):
    request = run_request(_args("--models", "hmil", "--epochs", "3", "--set", "model.dropout=0.1"))
    (config,) = resolve_configs(request).values()
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config.to_dict()))
    (replayed,) = resolve_configs(load_request(path)).values()
    assert replayed == config and config_hash(replayed) == config_hash(config)


def test_batch_size_reaches_the_config_as_an_int():
    request = run_request(_args("--models", "abmil", "--batch-size", "4"))
    assert request.overrides.train["batch_size"] == 4  # typed: never turned into a string
    (config,) = resolve_configs(request).values()
    assert config.train.batch_size == 4


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('models = ["abmil"]\n[trian]\nepochs = 2\n', r"unknown section\(s\) \['trian'\]"),
        ('[data]\nnmae = "x"\n', r"unknown option data.nmae; valid: .*name"),
        ('[cv]\nn_folds = "five"\n', r"cv.n_folds='five' is not a valid int"),
        ('models = ["abmil", "hmil"]\n[model_params]\ndropout = 0\n', r"model_params apply to one model"),
        ("models = 3\n", r"models must be a list of model names"),
        ("[data\n", r"not valid TOML"),
    ],
)
def test_bad_files_name_the_file_and_the_fix(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        load_request(path)
    assert str(path) in str(info.value)


def test_a_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(ConfigError, match=r"no such file"):
        load_request(tmp_path / "nope.toml")


def test_typed_overrides_are_checked_against_the_field_types():
    assert apply_overrides(TrainConfig(), {"lr": 1, "max_instances": None}, "train").lr == 1.0
    with pytest.raises(ConfigError, match=r"train.epochs=2.5 is not a valid int"):
        apply_overrides(TrainConfig(), {"epochs": 2.5}, "train")
    with pytest.raises(ConfigError, match=r"data.scale=True is not a valid float"):
        apply_overrides(DataConfig(), {"scale": True}, "data")
