"""HMIL presets, switches, loss terms and schedules (hmil-method.md §8, §9, §13, §17)."""

from __future__ import annotations

import dataclasses

import pytest

from benchmark.core.config import LossTerm
from benchmark.core.errors import ConfigError
from benchmark.models import default_loss_terms, model_spec, resolve_model_params
from benchmark.run.loss_weighting import schedule_factor
from hmil.model import HMILCodeConfig, HMILConfig
from hmil.presets import LADDER, PRESETS, loss_terms

PAPER_SWITCHES = {
    "preset": "paper",
    "use_coarse_branch": True,
    "use_coarse_ce": True,
    "use_ham": True,
    "use_hba": True,
    "use_scl": True,
    "curriculum": True,
    "schedule": "linear",
    "constant_beta": 0.5,
    "schedule_alignment": True,
    "coarse_ce_weight": 1.0,
    "ham_weight": 1.0,
    "hba_weight": 1.0,
    "scl_weight": 1.0,
    "hba_form": "nll",
    "scl_tau_mode": "fixed",
    "scl_tau": 0.1,
    "scl_tau_max": 1.0,
    "scl_scale": "paper",
    "scl_positives": "all_rows",
}
CODE_SWITCHES = {
    **PAPER_SWITCHES,
    "preset": "code",
    "schedule": "quadratic",
    "schedule_alignment": False,
    "ham_weight": 0.0,
    "hba_form": "ce_on_probs",
    "scl_tau_mode": "cosine",
    "scl_scale": "code",
}
ARCHITECTURE = {
    "hidden_dim": 256,
    "coarse_dim": 1024,
    "fine_dim": 256,
    "coarse_attention_dim": 256,
    "fine_attention_dim": 64,
    "dropout": 0.0,
    "head": "shared",
    "init": "kaiming",
}


@pytest.mark.parametrize(("name", "switches"), [("hmil", PAPER_SWITCHES), ("hmil-code", CODE_SWITCHES)])
def test_each_preset_resolves_to_exactly_its_switches(name, switches):
    assert resolve_model_params(name) == {**switches, **ARCHITECTURE}  # what the harness logs
    assert PRESETS[switches["preset"]] == switches


def test_exact_loss_terms_per_preset():
    assert default_loss_terms("hmil", resolve_model_params("hmil")) == (
        LossTerm("fine_ce"),
        LossTerm("coarse_ce", 1.0, "linear"),
        LossTerm("ham", 1.0, "linear"),
        LossTerm("hba", 1.0, "linear"),
        LossTerm("supcon", 1.0, "linear", complement=True),
    )
    assert default_loss_terms("hmil-code", resolve_model_params("hmil-code")) == (
        LossTerm("fine_ce"),
        LossTerm("coarse_ce", 1.0, "quadratic"),
        LossTerm("ham", 0.0),  # computed and logged, not optimised
        LossTerm("hba", 1.0),
        LossTerm("supcon", 1.0, "quadratic", complement=True),
    )


def test_training_defaults_follow_the_released_code():
    for name in ("hmil", "hmil-code", "hmil-pc"):
        spec = model_spec(name)
        assert spec.train_defaults == {"lr": 1e-4, "weight_decay": 0.0, "optimizer": "adam"}
        assert spec.reference_train == {"batch_size": 64}  # only with train.preset=reference


def _factors(config: HMILConfig, epoch: int, epochs: int) -> dict[str, float]:
    return {t.name: t.weight * schedule_factor(t, epoch, epochs) for t in loss_terms(config)}


@pytest.mark.parametrize(
    ("epoch", "linear", "quadratic"),
    [
        (0, 1.0, 1.0),
        (50, 0.75, 0.9375),
        (100, 0.5, 0.75),
        (150, 0.25, 0.4375),
        (199, 0.005, 0.009975),
    ],  # §8 rounds 1 − 0.995² = 0.009975 to 0.01
)
def test_schedules_reproduce_the_table_at_e200(epoch, linear, quadratic):
    paper = _factors(HMILConfig(), epoch, 200)
    for name in ("coarse_ce", "ham", "hba"):
        assert paper[name] == pytest.approx(linear)
    assert paper["supcon"] == pytest.approx(1 - linear)
    assert paper["fine_ce"] == 1.0
    code = _factors(HMILCodeConfig(), epoch, 200)
    assert code["coarse_ce"] == pytest.approx(quadratic, abs=1e-12)
    assert code["supcon"] == pytest.approx(1 - quadratic, abs=1e-12)
    assert code["hba"] == 1.0 and code["ham"] == 0.0 and code["fine_ce"] == 1.0


@pytest.mark.parametrize(
    ("schedule", "beta_at"),
    [("linear", (1.0, 0.5, 0.1)), ("quadratic", (1.0, 0.75, 0.19)), ("constant", (0.5, 0.5, 0.5))],
)
def test_beta_at_start_middle_and_last_epoch(schedule, beta_at):
    config = HMILConfig(schedule=schedule)
    for epoch, beta in zip((0, 5, 9), beta_at, strict=True):
        f = _factors(config, epoch, 10)
        assert f["coarse_ce"] == pytest.approx(beta) and f["ham"] == pytest.approx(beta)
        assert f["supcon"] == pytest.approx(1 - beta)


def test_curriculum_off_gives_fixed_unit_weights():
    config = dataclasses.replace(HMILConfig(), curriculum=False, ham_weight=0.3)
    assert loss_terms(config) == (
        LossTerm("fine_ce"),
        LossTerm("coarse_ce"),
        LossTerm("ham", 0.3),
        LossTerm("hba"),
        LossTerm("supcon"),
    )


@pytest.mark.parametrize(
    ("rung", "names"),
    [
        ("1-flat", ["fine_ce"]),
        ("2-dual", ["fine_ce", "coarse_ce"]),
        ("3-ham", ["fine_ce", "coarse_ce", "ham"]),
        ("4-hba", ["fine_ce", "coarse_ce", "ham", "hba"]),
        ("5-scl", ["fine_ce", "coarse_ce", "ham", "hba", "supcon"]),
        ("6-full", ["fine_ce", "coarse_ce", "ham", "hba", "supcon"]),
    ],
)
def test_ablation_ladder_terms(rung, names):
    config = dataclasses.replace(HMILConfig(), **LADDER[rung])
    terms = loss_terms(config)
    assert [t.name for t in terms] == names
    scheduled = rung == "6-full"
    assert all((t.schedule != "constant") == (scheduled and t.name != "fine_ce") for t in terms)


def test_coarse_branch_off_drops_every_coarse_term():
    config = dataclasses.replace(HMILConfig(), use_coarse_branch=False)
    assert [t.name for t in loss_terms(config)] == ["fine_ce", "supcon"]
    assert not (config.coarse_ce_active or config.ham_active or config.hba_active)


def test_overrides_are_cast_and_keep_the_other_preset_values():
    params = resolve_model_params("hmil-code", {"hba_form": "nll", "scl_scale": "paper", "curriculum": "off"})
    assert params == {
        **CODE_SWITCHES,
        **ARCHITECTURE,
        "hba_form": "nll",
        "scl_scale": "paper",
        "curriculum": False,
    }


def test_scl_scale_switch_sets_the_supcon_factors():
    code, paper = HMILCodeConfig(), HMILConfig()
    assert (code.scl_tau_base, code.scl_divide_by_batch) == (0.1, True)
    assert (paper.scl_tau_base, paper.scl_divide_by_batch) == (None, False)
    assert dataclasses.replace(paper, scl_scale="code").scl_divide_by_batch is True


def test_hmil_pc_is_the_paper_preset_with_per_class_heads_and_torch_init():
    params = resolve_model_params("hmil-pc")
    assert params == {**PAPER_SWITCHES, **ARCHITECTURE, "head": "per_class", "init": "torch"}
    assert default_loss_terms("hmil-pc", params) == default_loss_terms("hmil", resolve_model_params("hmil"))


@pytest.mark.parametrize(
    ("name", "overrides", "match"),
    [
        ("hmil", {"schedule": "cosine"}, r"model.schedule='cosine' is not valid; choose one of"),
        ("hmil", {"hba_form": "kl"}, r"model.hba_form='kl' is not valid"),
        ("hmil", {"scl_positives": "own_row"}, r"model.scl_positives='own_row' is not valid"),
        ("hmil", {"preset": "code"}, r"model.preset='code': the preset is chosen by the model name"),
        ("hmil-code", {"preset": "paper"}, r"model.preset='paper'.*hmil-code = code"),
        ("hmil", {"ham_weight": "-1"}, r"model.ham_weight must be ≥ 0"),
        ("hmil", {"constant_beta": "1.5"}, r"model.constant_beta must be in \[0, 1\]"),
        ("hmil", {"scl_tau": "0"}, r"model.scl_tau must be > 0"),
        ("hmil-code", {"scl_tau_max": "0.05"}, r"model.scl_tau_max=0.05 is below model.scl_tau=0.1"),
        ("hmil", {"dropout": "1"}, r"model.dropout must be in \[0, 1\)"),
    ],
)
def test_bad_config_values_raise_config_errors(name, overrides, match):
    with pytest.raises(ConfigError, match=match):
        resolve_model_params(name, overrides)
