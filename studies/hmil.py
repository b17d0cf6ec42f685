"""Search space of HMIL (``hmil``, paper preset, ``hmil-code``, released-code preset, and ``hmil-pc``).

Searched: the optimiser (weight decay from a list that includes the reference's 0), the curriculum schedule (linear or quadratic β_e), the SupCon temperature τ
(fixed τ for the paper preset; the minimum of the cosine schedule for the code preset) and the λ weights
of the loss terms the preset optimises, plus the attention dropout. The preset's switches (which terms
exist, HBA form, τ mode) stay fixed: they define the method, tuning only sets its free constants. The bags
per optimiser step are not searched: they are part of the budget every method shares (``train.preset``).

Notes:
    ``hmil-code`` logs HAM with weight 0 (never optimised, as in the released code), so its ``ham_weight``
    is not searched.
"""

from __future__ import annotations

import optuna

from benchmark.tune.space import Overrides, register_space, suggest_model, suggest_optimizer

__all__ = ["hmil_code_space", "hmil_space"]  # hmil_space serves hmil and hmil-pc (same paper losses)


def _space(trial: optuna.trial.BaseTrial, *, tune_ham: bool) -> Overrides:
    spec: dict[str, tuple] = {
        "schedule": ("cat", ["linear", "quadratic"]),
        "scl_tau": ("float", 0.05, 0.5, True),
        "coarse_ce_weight": ("float", 0.25, 2.0, True),
        "hba_weight": ("float", 0.25, 2.0, True),
        "scl_weight": ("float", 0.1, 2.0, True),
        "dropout": ("float", 0.0, 0.25),
    }
    if tune_ham:
        spec["ham_weight"] = ("float", 0.1, 2.0, True)
    train = suggest_optimizer(trial, weight_decay=[0.0, 1e-6, 1e-5, 1e-4, 1e-3])
    return Overrides(train=train, model=suggest_model(trial, spec))


@register_space("hmil", "hmil-pc")
def hmil_space(trial: optuna.trial.BaseTrial) -> Overrides:
    """Paper preset: lr, weight decay, schedule, τ, λ of coarse CE / HAM / HBA / SupCon, dropout."""
    return _space(trial, tune_ham=True)


@register_space("hmil-code")
def hmil_code_space(trial: optuna.trial.BaseTrial) -> Overrides:
    """Code preset: as `hmil_space` without the HAM weight (logged only in that preset)."""
    return _space(trial, tune_ham=False)
