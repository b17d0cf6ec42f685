"""How long a `benchmark run` will take: the plan (methods × folds × epoch budget) and an estimate from the
folds finished so far, for the progress display."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["Pace", "duration"]


def duration(seconds: float) -> str:
    """``"45 s"``, ``"12 min"``, ``"2.5 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class Pace:
    """The folds still to run per method and the seconds each finished fold took.

    The estimate for a method's remaining folds is the mean duration of its own finished folds, or, before
    its first one, the mean fold duration of the methods finished so far (models differ in cost, so this
    part is rough). With ``workers`` processes the cells share them. Early stopping is in the measured folds, not in the budget.
    """

    methods: Sequence[str]
    folds: Sequence[int]
    epochs: Mapping[str, int]
    workers: int = 1
    remaining: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.remaining = {m: len(self.folds) for m in self.methods}

    def plan_line(self) -> str:
        """``plan: 9 methods × 5 folds, ≤ 15 epochs each (at most 675 epochs); …``."""
        budgets = sorted(set(self.epochs.values()))
        each = f"≤ {budgets[0]}" if len(budgets) == 1 else f"≤ {budgets[0]}–{budgets[-1]}"
        total = sum(self.epochs[m] for m in self.methods) * len(self.folds)
        return (
            f"plan: {len(self.methods)} method(s) × {len(self.folds)} fold(s), {each} epochs each (at most "
            f"{total} epochs); finished folds are skipped; a time estimate follows the first fold"
        )

    def skipped(self, method: str, n: int) -> None:
        self.remaining[method] = max(0, self.remaining.get(method, 0) - n)

    def fold_done(self, method: str, seconds: float) -> None:
        self.remaining[method] = max(0, self.remaining.get(method, 0) - 1)
        self.seconds.setdefault(method, []).append(seconds)

    def seconds_left(self) -> float | None:
        """Estimated seconds for the folds not yet run; None before the first fold."""
        measured = [s for values in self.seconds.values() for s in values]
        if not measured:
            return None
        overall = statistics.fmean(measured)
        total = sum(
            n * (statistics.fmean(self.seconds[m]) if m in self.seconds else overall)
            for m, n in self.remaining.items()
        )
        return total / self.workers  # cells of a parallel run share the workers

    def estimate_line(self) -> str | None:
        left = self.seconds_left()
        if left is None:
            return None
        folds = sum(self.remaining.values())
        unseen = [m for m, n in self.remaining.items() if n and m not in self.seconds]
        caveat = f" ({len(unseen)} method(s) not timed yet: rough)" if unseen else ""
        return f"estimate: about {duration(left)} more for {folds} fold(s) at the pace so far{caveat}"
