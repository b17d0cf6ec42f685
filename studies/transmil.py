"""Search space of TransMIL.

Notes:
    The depth is not searched: our TransMIL is the reference architecture, exactly two Nyström layers with
    the PPEG between them, and has no depth option. The width (with the head count kept at a 64-wide
    head), the number of Nyström landmarks and the attention-output dropout are searched instead.
"""

from __future__ import annotations

import optuna

from benchmark.tune.space import Overrides, register_space, suggest_model, suggest_optimizer

__all__ = ["transmil_space"]


@register_space("transmil")
def transmil_space(trial: optuna.trial.BaseTrial) -> Overrides:
    """lr, weight decay, width (heads = width / 64), landmarks and dropout."""
    model = suggest_model(
        trial,
        {
            "dim": ("cat", [256, 512]),
            "landmarks": ("cat", [64, 128, 256]),
            "dropout": ("float", 0.0, 0.3),
        },
    )
    model["heads"] = str(int(model["dim"]) // 64)  # derived, not a free parameter
    return Overrides(train=suggest_optimizer(trial), model=model)
