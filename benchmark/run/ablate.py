"""``benchmark ablate``: the HMIL ablation ladder on identical folds, one MLflow parent per rung.

Rungs (hmil-method.md §13, overrides in `hmil.presets.LADDER`): flat gated attention → + coarse branch →
+ HAM → + HBA → + SupCon → + curriculum (= full HMIL, paper preset). Every rung is the registered
``hmil`` model (or ``hmil-pc``, the same ladder with per-class heads) with config switches, so no code
differs between rungs; each is logged under the method label ``<model>/<rung>`` in the experiment
``<dataset>-ablation`` and compared with paired Wilcoxon tests against the full model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from benchmark.compare.comparison import Comparison, compare
from benchmark.core.errors import ConfigError
from benchmark.data import load_dataset
from benchmark.run.observer import RunObserver
from benchmark.run.request import RunRequest
from benchmark.run.runner import run_benchmark
from hmil.presets import LADDER

__all__ = ["DEFAULT_RUNGS", "LADDER_MODELS", "REFERENCE_RUNG", "ladder_labels", "run_ablation"]

DEFAULT_RUNGS = ("1-flat", "2-dual", "3-ham", "4-hba", "5-scl", "6-full")
REFERENCE_RUNG = "6-full"
LADDER_MODELS = ("hmil", "hmil-pc")  # the paper-preset models the ladder's switches apply to


def _as_override(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def ladder_labels(rungs: Sequence[str], model: str = "hmil") -> list[str]:
    return [f"{model}/{r}" for r in rungs]


def run_ablation(
    request: RunRequest,
    rungs: Sequence[str] = DEFAULT_RUNGS,
    observer: RunObserver | None = None,
    *,
    levels: Sequence[str] = ("fine", "coarse"),
    model: str = "hmil",
) -> dict[str, Comparison]:
    """Run every rung (resumable like `run_benchmark`) and return the ladder table per level.

    Args:
        request: data, folds, training options and tracking; ``models`` and ``overrides.model`` are
            set per rung (user ``--set model.*`` values apply on top of each rung's switches).
        rungs: rung names from `hmil.presets.LADDER`.
        observer: progress hooks.
        levels: label levels to tabulate.
        model: ``hmil`` (the paper's heads) or ``hmil-pc`` (per-class heads, not in the paper).
    """
    if model not in LADDER_MODELS:
        raise ConfigError(f"--model {model!r}: the ablation ladder applies to {', '.join(LADDER_MODELS)}.")

    unknown = [r for r in rungs if r not in LADDER]
    if unknown:
        raise ConfigError(f"--rungs: unknown rung(s) {unknown}; valid: {', '.join(LADDER)}.")
    tracking = dataclasses.replace(
        request.tracking, experiment=request.tracking.experiment or f"{request.data.name}-ablation"
    )
    summary = None
    bags = load_dataset(request.data)  # once for the whole ladder
    for rung in rungs:
        overrides = {k: _as_override(v) for k, v in LADDER[rung].items()}
        overrides.update(request.overrides.model)
        summary = run_benchmark(
            dataclasses.replace(
                request,
                models=[model],
                overrides=dataclasses.replace(request.overrides, model=overrides),
                label=f"{model}/{rung}",
                tracking=tracking,
            ),
            observer,
            bags=bags,
        )
    labels = ladder_labels(rungs, model)
    reference = f"{model}/{REFERENCE_RUNG}" if REFERENCE_RUNG in rungs else None
    tables = {}
    for level in levels:
        cmp = compare(
            summary.tracking_uri,
            tracking.experiment,
            level=level,
            methods=labels,
            split_digest=summary.split_digest,
            reference=reference,
        )
        tables[level] = dataclasses.replace(cmp, methods=tuple(m for m in labels if m in cmp.methods))
    return tables
