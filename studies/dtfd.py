"""Search space of DTFD-MIL: optimiser, widths, pseudo-bag count, distillation and dropout."""

from __future__ import annotations

import optuna

from benchmark.tune.space import Overrides, register_space, suggest_model, suggest_optimizer

__all__ = ["dtfd_space"]


@register_space("dtfd")
def dtfd_space(trial: optuna.trial.BaseTrial) -> Overrides:
    """lr, weight decay, hidden/attention widths, number of pseudo-bags, distillation, dropout."""
    model = suggest_model(
        trial,
        {
            "hidden_dim": ("cat", [256, 512]),
            "attention_dim": ("cat", [64, 128]),
            "n_pseudo_bags": ("int", 2, 8),
            "distill": ("cat", ["afs", "maxmins", "maxs"]),
            "dropout": ("float", 0.0, 0.5),
        },
    )
    return Overrides(train=suggest_optimizer(trial), model=model)
