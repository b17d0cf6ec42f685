"""Search space of CLAM-SB and CLAM-MB.

Besides the optimiser and dropout, the two CLAM-specific knobs: ``k_sample`` (pseudo-labelled instances
per branch, the reference ``--B``) and the bag weight w of ``w · bag CE + (1 − w) · instance loss``
(reference 0.7), suggested as one derived parameter ``clam.bag_weight`` that sets the harness loss terms
``loss.fine_ce.weight`` = w and ``loss.instance.weight`` = 1 − w.
"""

from __future__ import annotations

import optuna

from benchmark.tune.space import Overrides, number_str, register_space, suggest_model, suggest_optimizer

__all__ = ["clam_space"]


@register_space("clam-sb", "clam-mb")
def clam_space(trial: optuna.trial.BaseTrial) -> Overrides:
    """lr, weight decay, dropout, size, k_sample and the bag weight."""
    model = suggest_model(
        trial,
        {
            "dropout": ("float", 0.0, 0.5),
            "size": ("cat", ["small", "big"]),
            "k_sample": ("cat", [4, 8, 16]),
        },
    )
    w = trial.suggest_float("clam.bag_weight", 0.5, 0.95)
    # Rounded so that w = 0.7 gives exactly the reference 0.3 (1 − 0.7 is 0.30000000000000004 in floats).
    loss = {"fine_ce.weight": number_str(w), "instance.weight": number_str(round(1.0 - w, 12))}
    return Overrides(train=suggest_optimizer(trial), model=model, loss=loss)
