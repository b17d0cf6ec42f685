"""Search space of ABMIL (gated, ``abmil``) and attention MIL with plain tanh attention (``abmil-plain``).

Ilse et al. (2018) tuned the learning rate, weight decay and the embedding/attention widths; dropout after
the embedding is the CLAM-style regulariser our implementation exposes.
"""

from __future__ import annotations

import optuna

from benchmark.tune.space import Overrides, register_space, suggest_model, suggest_optimizer

__all__ = ["abmil_space"]


@register_space("abmil", "abmil-plain")
def abmil_space(trial: optuna.trial.BaseTrial) -> Overrides:
    """lr, weight decay, dropout, hidden (M) and attention (L) widths."""
    model = suggest_model(
        trial,
        {
            "dropout": ("float", 0.0, 0.5),
            "hidden_dim": ("cat", [128, 256, 512]),
            "attention_dim": ("cat", [64, 128, 256]),
        },
    )
    return Overrides(train=suggest_optimizer(trial), model=model)
