"""Search space of the pooling baselines (``meanpool``, ``maxpool``): embedding + masked pooling + head."""

from __future__ import annotations

import optuna

from benchmark.tune.space import Overrides, register_space, suggest_model, suggest_optimizer

__all__ = ["pooling_space"]


@register_space("meanpool", "maxpool")
def pooling_space(trial: optuna.trial.BaseTrial) -> Overrides:
    """lr, weight decay, dropout and the embedding width."""
    model = suggest_model(trial, {"dropout": ("float", 0.0, 0.5), "hidden_dim": ("cat", [128, 256, 512])})
    return Overrides(train=suggest_optimizer(trial), model=model)
