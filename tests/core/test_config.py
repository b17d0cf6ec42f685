import pytest

from benchmark.core.config import (
    CVConfig,
    DataConfig,
    LossTerm,
    RunConfig,
    TrainConfig,
)
from benchmark.core.errors import ConfigError
from benchmark.core.hashing import config_hash, flatten
from benchmark.core.overrides import apply_overrides, parse_set_options
from benchmark.run.loss_weighting import schedule_factor


def test_overrides_are_cast_and_unknown_keys_rejected():
    t = apply_overrides(TrainConfig(), {"lr": "1e-3", "max_instances": "64", "amp": "false"}, "train")
    assert (t.lr, t.max_instances, t.amp) == (1e-3, 64, False)
    assert apply_overrides(t, {"max_instances": "none"}, "train").max_instances is None
    with pytest.raises(ConfigError, match=r"unknown option train.lrr; valid: .*lr"):
        apply_overrides(TrainConfig(), {"lrr": "1"}, "train")
    with pytest.raises(ConfigError, match="train.epochs='ten' is not a valid int"):
        apply_overrides(TrainConfig(), {"epochs": "ten"}, "train")


def test_validation_messages():
    with pytest.raises(ConfigError, match="train.batch_size must be ≥ 1"):
        TrainConfig(batch_size=0)
    with pytest.raises(ConfigError, match="cv.n_folds must be ≥ 2"):
        CVConfig(n_folds=1)
    with pytest.raises(ConfigError, match="selection metric"):
        TrainConfig(selection="test.fine.auc")
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_set_options(["lr=1"])


def test_hash_ignores_execution_only_fields_and_tracks_results():
    base = RunConfig(model="abmil")
    moved = RunConfig(
        model="abmil", data=DataConfig(cache_dir="/elsewhere", data_dir="/x"), train=TrainConfig(device="cpu")
    )
    assert config_hash(base) == config_hash(moved)
    assert config_hash(base) != config_hash(RunConfig(model="abmil", train=TrainConfig(lr=1e-3)))
    assert config_hash(base) != config_hash(RunConfig(model="abmil", model_params={"dropout": 0.1}))
    assert config_hash(base) != config_hash(RunConfig(model="abmil", seed=1))
    flat = flatten(base)
    assert flat["train.lr"] == "0.0002" and flat["loss.fine_ce.weight"] == "1.0"


def test_run_config_is_frozen():
    cfg = RunConfig(model="abmil", model_params={"dropout": 0.1})
    with pytest.raises(TypeError):
        cfg.model_params["dropout"] = 0.5


@pytest.mark.parametrize(
    ("schedule", "complement", "expected"),
    [
        ("linear", False, [1.0, 0.5, 0.05]),
        ("quadratic", False, [1.0, 0.75, 1 - 0.95**2]),
        ("constant", False, [1.0, 1.0, 1.0]),
        ("linear", True, [0.0, 0.5, 0.95]),
    ],
)
def test_schedules_at_0_half_and_last_epoch(schedule, complement, expected):
    term = LossTerm("x", schedule=schedule, complement=complement)
    got = [schedule_factor(term, e, 20) for e in (0, 10, 19)]
    assert got == pytest.approx(expected)
