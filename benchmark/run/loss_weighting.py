"""The one place where loss terms are weighted and scheduled; the trainer knows no model.

total = Σ_t  w_t · s_t(e, E) · L_t

* ``fine_ce`` = CE(logits, y_fine) and ``coarse_ce`` = CE(coarse_logits, y_coarse) are computed here;
  every other term comes from ``MILOutput.aux_losses`` under its name.
* s_t is ``constant`` (1), ``linear`` (β = 1 − e/E) or ``quadratic`` (1 − (e/E)²), or 1 − s_t with
  ``complement`` (HMIL weights SupCon by 1 − β while its coarse terms get β). e is the 0-based epoch, E the configured
  number of epochs (never the early-stopping epoch, so stopping early truncates, not compresses, a curriculum).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from benchmark.core.config import LossTerm
from benchmark.core.contract import MILOutput

__all__ = ["compose_loss", "schedule_factor"]

_HARNESS_TERMS = ("fine_ce", "coarse_ce")


def schedule_factor(term: LossTerm, epoch: int, total_epochs: int) -> float:
    """s_t(e, E) for a term, including its complement flag."""
    progress = epoch / max(total_epochs, 1)
    if term.schedule == "constant":
        value = 1.0
    elif term.schedule == "linear":
        value = 1.0 - progress
    else:  # quadratic
        value = 1.0 - progress**2
    return 1.0 - value if term.complement else value


def compose_loss(
    output: MILOutput,
    fine: torch.Tensor,
    coarse: torch.Tensor,
    terms: Sequence[LossTerm],
    *,
    epoch: int,
    total_epochs: int,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted total loss and the unweighted value of every term (for logging).

    Args:
        output: the model output for a batch (aux_losses filled in training mode).
        fine: (B,) fine labels. coarse: (B,) coarse labels.
        terms: configured loss terms.
        epoch, total_epochs: training progress for the schedules.

    Raises:
        RuntimeError: a configured term is missing from the output, or the model returned an
            auxiliary term that no config weights (a model/config bug, not a user error).
    """
    configured = {t.name for t in terms}
    stray = sorted(set(output.aux_losses) - configured)
    if stray:
        raise RuntimeError(f"model returned loss term(s) {stray} that have no configured weight")
    total = output.logits.new_zeros((), dtype=torch.float32)
    parts: dict[str, float] = {}
    for term in terms:
        if term.name == "fine_ce":
            value = F.cross_entropy(output.logits.float(), fine)
        elif term.name == "coarse_ce":
            if output.coarse_logits is None:
                raise RuntimeError("loss term coarse_ce needs a model with coarse_logits")
            value = F.cross_entropy(output.coarse_logits.float(), coarse)
        elif term.name in output.aux_losses:
            value = output.aux_losses[term.name].float()
        else:
            raise RuntimeError(f"configured loss term {term.name!r} is missing from the model output")
        parts[term.name] = float(value.detach())
        factor = term.weight * schedule_factor(term, epoch, total_epochs)
        if factor != 0.0:
            total = total + factor * value
    return total, parts
