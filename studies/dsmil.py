"""Search space of DSMIL: optimiser, query width, the query and value networks' form and dropout."""

from __future__ import annotations

import optuna

from benchmark.tune.space import Overrides, register_space, suggest_model, suggest_optimizer

__all__ = ["dsmil_space"]


@register_space("dsmil")
def dsmil_space(trial: optuna.trial.BaseTrial) -> Overrides:
    """lr, weight decay, q_dim, nonlinear_q, passing_v and (with passing_v) dropout_v."""
    model = suggest_model(
        trial,
        {
            "q_dim": ("cat", [64, 128, 256]),
            "nonlinear_q": ("cat", [True, False]),
            "passing_v": ("cat", [False, True]),
        },
    )
    if model["passing_v"] == "true":  # dropout_v only acts inside the value network
        model.update(suggest_model(trial, {"dropout_v": ("float", 0.0, 0.5)}))
    return Overrides(train=suggest_optimizer(trial), model=model)
