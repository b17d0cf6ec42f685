"""Reading validation results back from MLflow: one `ModelResult` per (dataset, model), and the report."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

from benchmark.core.config import DataConfig
from benchmark.core.errors import BenchmarkError
from benchmark.core.hashing import HASH_EXCLUDED, config_hash, flatten
from benchmark.core.overrides import Overrides
from benchmark.cv.files import default_split_path, split_digest
from benchmark.reproduce.protocol import CHECKED_MODELS, ValidationProtocol
from benchmark.run.resolve import resolve_run_config
from benchmark.tracking.store import finished_folds

__all__ = ["EXIT_OK", "EXIT_OUT_OF_BAND", "ModelResult", "ValidationReport", "read_result", "recorded_parent"]

EXIT_OK = 0
EXIT_OUT_OF_BAND = 3  # distinct from 1 (unexpected error) and 2 (user error) in the CLI


@dataclass(frozen=True)
class ModelResult:
    """One (dataset, model) row: test metrics over the finished folds.

    Attributes:
        folds_run / folds_total: finished folds vs the protocol's fold columns.
        acc, auc: per-fold test accuracy / AUC (fine level), in fold order.
        repeat_acc: mean accuracy of each complete repeat (10 folds).
        seconds: per-fold training+evaluation seconds (``compute.seconds_per_fold``).
        epochs: epochs run per fold; best_epochs: selected epoch per fold.
        band: the acceptance band, or None; checked: whether this row decides the exit code.
        config_hash, params, git_commit: the recorded parent run's config hash, MLflow params and commit.
    """

    dataset: str
    model: str
    folds_run: int
    folds_total: int
    acc: tuple[float, ...]
    auc: tuple[float, ...]
    repeat_acc: tuple[float, ...]
    seconds: tuple[float, ...]
    epochs: tuple[int, ...]
    best_epochs: tuple[int, ...]
    band: tuple[float, float] | None
    checked: bool
    config_hash: str
    params: Mapping[str, str] = field(default_factory=dict)
    git_commit: str = ""

    @property
    def acc_mean(self) -> float:
        return float(np.mean(self.acc)) if self.acc else math.nan

    @property
    def auc_mean(self) -> float:
        """Mean fold AUC, ignoring folds where it is undefined (one class in the test fold)."""
        finite = [a for a in self.auc if not math.isnan(a)]
        return float(np.mean(finite)) if finite else math.nan

    @property
    def acc_std(self) -> float:
        return float(np.std(self.acc, ddof=1)) if len(self.acc) > 1 else math.nan

    @property
    def acc_sem(self) -> float:
        """Standard error of the fold mean: std over folds / √(folds)."""
        return self.acc_std / math.sqrt(len(self.acc)) if len(self.acc) > 1 else math.nan

    @property
    def in_band(self) -> bool | None:
        if self.band is None:
            return None
        return self.band[0] <= self.acc_mean <= self.band[1]


@dataclass
class ValidationReport:
    """What `run_validation` measured and wrote.

    Attributes:
        rows: one `ModelResult` per (dataset, model), in run order.
        protocol: the protocol used.
        complete: every fold of the protocol finished for every row (else the document says PARTIAL).
        failures: checked rows outside their band ("musk1/abmil: 0.812 not in [0.85, 0.93]").
        exit_code: `EXIT_OK` or `EXIT_OUT_OF_BAND`.
        markdown: the document text; output: where it was written.
    """

    rows: list[ModelResult]
    protocol: ValidationProtocol
    complete: bool
    failures: list[str]
    exit_code: int
    markdown: str
    output: Path | None
    wall_seconds: float = 0.0
    experiments: dict[str, str] = field(default_factory=dict)


def read_result(
    client: MlflowClient,
    parent_id: str,
    dataset: str,
    model: str,
    proto: ValidationProtocol,
    bands: Mapping[str, tuple[float, float]],
) -> ModelResult:
    parent = client.get_run(parent_id)
    runs = finished_folds(client, parent.info.experiment_id, parent_id)
    folds = sorted(runs)
    metric = lambda f, k: float(runs[f].data.metrics.get(k, math.nan))  # noqa: E731
    acc = tuple(metric(f, "test.fine.accuracy") for f in folds)
    by_repeat: dict[int, list[float]] = {}
    for f, a in zip(folds, acc, strict=True):
        by_repeat.setdefault(f // proto.n_folds, []).append(a)
    return ModelResult(
        dataset=dataset,
        model=model,
        folds_run=len(folds),
        folds_total=proto.cv.total_folds,
        acc=acc,
        auc=tuple(metric(f, "test.fine.auc") for f in folds),
        repeat_acc=tuple(float(np.mean(v)) for _, v in sorted(by_repeat.items()) if len(v) == proto.n_folds),
        seconds=tuple(metric(f, "compute.seconds_per_fold") for f in folds),
        epochs=tuple(int(metric(f, "epochs_run")) for f in folds),
        best_epochs=tuple(int(metric(f, "best_epoch")) for f in folds),
        band=bands.get(dataset),
        checked=model in CHECKED_MODELS and dataset in bands,
        config_hash=parent.data.tags.get("benchmark.config_hash", ""),
        params=dict(parent.data.params),
        git_commit=parent.data.tags.get("benchmark.git_commit", ""),
    )


def _protocol_keys(flat: dict[str, str], proto: ValidationProtocol, model: str) -> list[str]:
    """The params a recorded run must share with the protocol: model, seed, the hashed cv fields and the
    protocol's own train/model overrides (files' locations are not matched)."""
    return [
        "model.name",
        "seed",
        *(k for k in flat if k.startswith("cv.") and k not in HASH_EXCLUDED),
        *(f"train.{k}" for k in proto.train),
        *(f"model.{k}" for k in proto.model.get(model, {})),
    ]


def recorded_parent(
    client: MlflowClient,
    experiment: str,
    dataset: str,
    model: str,
    proto: ValidationProtocol,
    splits_root: str,
) -> str:
    """The recorded parent run of ``model`` on ``dataset`` under this protocol (report-only mode).

    Matches the split digest of the protocol's split file and every setting the protocol declares
    (cv, seed, its train.*/model.* overrides) rather than the config hash, so that results stay
    readable after the harness gains new config fields. A run with the current config hash wins, then the
    most finished folds, then the newest.
    """
    split_file = default_split_path(splits_root, dataset, proto.cv)
    if not split_file.is_file():
        raise BenchmarkError(
            f"validate --report-only: split file {split_file} is missing; run without "
            "--report-only (or pass --splits-dir where the validation run saved it)."
        )
    digest = split_digest(split_file)
    config = resolve_run_config(
        model,
        data=DataConfig(name=dataset),
        cv=proto.cv,
        seed=proto.seed,
        overrides=Overrides(train=proto.train, model=proto.model.get(model, {})),
    )
    flat = flatten(config)
    keys = _protocol_keys(flat, proto, model)
    exp = client.get_experiment_by_name(experiment)
    parents = (
        []
        if exp is None
        else client.search_runs(
            [exp.experiment_id],
            f"tags.`benchmark.role` = 'parent' and tags.`benchmark.method` = '{model}' and "
            f"tags.`benchmark.split_digest` = '{digest}'",
        )
    )
    matching = [r for r in parents if all(r.data.params.get(k) == flat[k] for k in keys)]
    if not matching:
        raise BenchmarkError(
            f"validate --report-only: no recorded {model} run on {dataset} with this protocol in "
            f"experiment {experiment!r}; run without --report-only first."
        )
    # Prefer a run made with today's exact config (same hash, e.g. one being resumed), then the most complete.
    current = config_hash(config)
    best = max(
        matching,
        key=lambda r: (
            r.data.tags.get("benchmark.config_hash") == current,
            int(r.data.tags.get("benchmark.folds_finished", "0")),
            r.info.start_time,
        ),
    )
    return best.info.run_id
