"""One frozen, validated config per run; flattened to MLflow params and hashed into a tag.

``RunConfig`` = model name + model hyperparameters + loss terms + data + train + cv + seed.
Overrides (``--set train.lr=3e-4 model.dropout=0.1``) are parsed and cast by `benchmark.core.overrides`;
unknown keys are errors. Tracking options live outside the hash: they say where results go, not what they are.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from benchmark.core.errors import ConfigError

__all__ = [
    "BUDGET_FIELDS",
    "FEATURE_DTYPES",
    "TRAIN_PRESETS",
    "CVConfig",
    "DataConfig",
    "LossTerm",
    "RunConfig",
    "TrackingConfig",
    "TrainConfig",
]

SCHEDULES = ("constant", "linear", "quadratic")
TRAIN_PRESETS = ("equal", "reference")
# The optimiser budget and stopping rule: identical for every method of a run under the "equal" preset.
# A model's registered training defaults may not set them; its reference values (HMIL's 64 bags per step,
# CLAM's batch 1, …) apply only with ``train.preset=reference``.
BUDGET_FIELDS = ("batch_size", "epochs", "patience", "min_epochs", "selection")


FEATURE_DTYPES = ("source", "fp16", "fp32")


@dataclass(frozen=True)
class DataConfig:
    """Which dataset and where its files are.

    Attributes:
        name: dataset registry name (``benchmark datasets`` lists them).
        data_dir: root of the user's data (real datasets); BENCHMARK_DATA_DIR if unset.
        labels: labels CSV (``csv``/``bracs``; default <data_dir>/labels.csv or train.csv for PANDA).
        hierarchy: hierarchy TOML (``csv`` datasets).
        features: feature directory override (default: detected under data_dir).
        scale: size multiplier for simulated datasets (1 = demo size).
        seed: generator seed for simulated datasets.
        cache_dir: where generated datasets and packed feature caches live.
        preload_max_gb: preload features into RAM up to this size; beyond it use the packed memmap cache.
        feature_dtype: precision of the features held in memory: "source" (as the files store them, e.g.
            fp16 for the simulated sets), "fp16" (halves an fp32 set's memory; results move within float16
            rounding) or "fp32". Batches are cast to float32 on their way to the model.
    """

    name: str = "panda-sim"
    data_dir: str | None = None
    labels: str | None = None
    hierarchy: str | None = None
    features: str | None = None
    scale: float = 1.0
    seed: int = 0
    cache_dir: str = ".benchmark-cache"
    preload_max_gb: float = 8.0
    feature_dtype: str = "source"

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ConfigError(f"data.scale must be > 0, got {self.scale}; use e.g. --scale 1.")
        if not self.preload_max_gb >= 0:
            raise ConfigError(f"data.preload_max_gb must be ≥ 0, got {self.preload_max_gb}.")
        if self.feature_dtype not in FEATURE_DTYPES:
            raise ConfigError(
                f"data.feature_dtype must be one of {', '.join(FEATURE_DTYPES)}, got {self.feature_dtype!r}."
            )


ENCODERS = ("none", "small-cnn")  # instance encoders trained with the model (benchmark.run.encoders)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and model selection; identical rules for every method.

    Attributes:
        epochs: maximum epochs per fold.
        batch_size: bags per optimiser step (padded with masks).
        lr, weight_decay: AdamW (weight_decay=0 is plain Adam).
        patience: early stopping after this many epochs without a better validation score (0 = off).
        min_epochs: never stop before this epoch count.
        max_instances: training-time cap on instances per bag (random subset); evaluation uses full bags.
        selection: validation metric used for checkpoint selection and early stopping (higher is better);
            ties are broken by the lower validation fine cross-entropy.
        eval_batch_size: bags per evaluation batch (full bags, padded).
        device: "auto" (CUDA if present), "cpu" or "cuda[:i]".
        amp: bf16 autocast on CUDA.
        standardize: z-score features with the training part's instance mean/std (for unscaled
            hand-crafted features such as the classical MIL sets; encoder features need none).
        optimizer: "adamw" (decoupled weight decay) or "adam" (L2 weight decay, as CLAM and HMIL used).
        bucket_pool: length bucketing of training batches — the shuffled slides are cut into pools of
            ``bucket_pool`` batches, each pool is sorted by bag length and cut into batches, and the batch
            order is shuffled. Less padding (padding never changes a result, only costs time); 0 or 1 = plain
            random batches.
        encoder: "none" (the model reads the stored instance features) or "small-cnn" (a LeNet-like CNN
            trained end to end with the model on image instances — mnist-panda, digits-panda; the
            "online feature extraction" setting, `benchmark.run.encoders`). Works for every model.
        encoder_dim: feature width F the encoder hands to the model.
        max_batch_instances: cap on the padded instances of a training batch (B · N_max); a batch of
            ``batch_size`` bags that would exceed it is cut into smaller optimiser steps (bounded memory on
            realistic bags). None = no cap (the default: the budget stays ``batch_size`` bags per step).
        compile: ``torch.compile`` the model (in place). Compiled kernels draw dropout masks from another
            random stream, so results differ as with another seed (equal up to rounding without dropout).
        features_on_device: keep the whole feature array on the training device when it fits (CUDA:
            no host→device copy per batch; execution only).
        preset: "equal" — every method gets the harness's budget (``BUDGET_FIELDS``: bags per step, epochs,
            stopping rule, selection metric); "reference" — each model's reference budget where it has one
            (e.g. HMIL 64 bags per step, CLAM batch 1). Explicit overrides win over both. Recorded, not
            hashed: the resolved fields it sets are.
    """

    epochs: int = 20
    batch_size: int = 16
    lr: float = 2e-4
    weight_decay: float = 1e-5
    patience: int = 5
    min_epochs: int = 0
    max_instances: int | None = None
    selection: str = "fine.auc"
    eval_batch_size: int = 32
    device: str = "auto"
    amp: bool = True
    standardize: bool = False
    optimizer: str = "adamw"
    bucket_pool: int = 8
    encoder: str = "none"
    encoder_dim: int = 128
    preset: str = "equal"
    max_batch_instances: int | None = None
    compile: bool = False
    features_on_device: bool = False

    def __post_init__(self) -> None:
        if self.preset not in TRAIN_PRESETS:
            raise ConfigError(f"train.preset must be one of {', '.join(TRAIN_PRESETS)}, got {self.preset!r}.")
        if self.optimizer not in ("adamw", "adam"):
            raise ConfigError(f"train.optimizer must be 'adamw' or 'adam', got {self.optimizer!r}.")
        if self.encoder not in ENCODERS:
            raise ConfigError(f"train.encoder must be one of {', '.join(ENCODERS)}, got {self.encoder!r}.")
        if self.encoder_dim < 1:
            raise ConfigError(f"train.encoder_dim must be ≥ 1, got {self.encoder_dim}.")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be ≥ 1, got {getattr(self, name)}.")
        if self.lr <= 0:
            raise ConfigError(f"train.lr must be > 0, got {self.lr}.")
        if self.weight_decay < 0 or self.patience < 0 or self.min_epochs < 0 or self.bucket_pool < 0:
            raise ConfigError(
                "train.weight_decay, train.patience, train.min_epochs and train.bucket_pool must be ≥ 0."
            )
        if self.max_batch_instances is not None and self.max_batch_instances < 1:
            raise ConfigError(
                f"train.max_batch_instances must be ≥ 1 or unset, got {self.max_batch_instances}."
            )
        if self.max_instances is not None and self.max_instances < 1:
            raise ConfigError(f"train.max_instances must be ≥ 1 or unset, got {self.max_instances}.")
        if self.selection not in SELECTION_METRICS:
            raise ConfigError(
                f"train.selection={self.selection!r} is not a selection metric; choose one of {sorted(SELECTION_METRICS)}."
            )


SELECTION_METRICS = {
    "fine.auc",
    "fine.balanced_accuracy",
    "fine.accuracy",
    "fine.f1_macro",
    "fine.qwk",
    "coarse.auc",
    "fine+coarse.accuracy",
}


@dataclass(frozen=True)
class CVConfig:
    """Split protocol.

    Attributes:
        protocol: "kfold" (stratified, case-grouped k-fold; val carved from the training part) or
            "mc" (Monte-Carlo stratified train/val/test splits, the HMIL paper's protocol).
        n_folds: k for k-fold, number of repetitions for mc.
        val_fraction: share of each training part held out for validation (kfold), or of all slides (mc).
        test_fraction: share of all slides used as test in mc.
        seed: split seed (kept separate from the training seed so methods share folds).
        repeats: repeated k-fold (e.g. 10-fold × 5 as in Ilse et al. 2018); fold columns are numbered
            repeat · n_folds + fold. Only for kfold.
        splits_dir: where split files are generated and reused (not hashed: the split digest identifies
            the folds).
        splits_file: an explicit split CSV instead of the generated one (not hashed, as above).
    """

    protocol: str = "kfold"
    n_folds: int = 5
    val_fraction: float = 0.2
    test_fraction: float = 0.1
    seed: int = 0
    repeats: int = 1
    splits_dir: str = "splits"
    splits_file: str | None = None

    @property
    def total_folds(self) -> int:
        """Number of fold columns in the split file (k · repeats for kfold, repetitions for mc)."""
        return self.n_folds * self.repeats

    def __post_init__(self) -> None:
        if self.repeats < 1 or (self.repeats > 1 and self.protocol != "kfold"):
            raise ConfigError(f"cv.repeats (--repeats) must be ≥ 1, and 1 unless kfold; got {self.repeats}.")
        if self.protocol not in ("kfold", "mc"):
            raise ConfigError(f"cv.protocol must be 'kfold' or 'mc', got {self.protocol!r}.")
        if self.n_folds < 2 and self.protocol == "kfold":
            raise ConfigError(f"cv.n_folds must be ≥ 2 for k-fold, got {self.n_folds}; use --folds 5.")
        if self.n_folds < 1:
            raise ConfigError(f"cv.n_folds must be ≥ 1, got {self.n_folds}.")
        if not 0 < self.val_fraction < 0.5 or not 0 < self.test_fraction < 0.5:
            raise ConfigError("cv.val_fraction and cv.test_fraction must be in (0, 0.5).")


@dataclass(frozen=True)
class LossTerm:
    """One weighted loss term: total = Σ weight · schedule(progress) · term.

    ``schedule`` is "constant" (1), "linear" (1 − e/E) or "quadratic" (1 − (e/E)²); ``complement``
    uses 1 − schedule instead (HMIL weights its coarse and alignment terms by β and SupCon by 1 − β).
    """

    name: str
    weight: float = 1.0
    schedule: str = "constant"
    complement: bool = False

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ConfigError(
                f"loss term {self.name}: schedule must be one of {SCHEDULES}, got {self.schedule!r}."
            )
        if self.weight < 0:
            raise ConfigError(f"loss term {self.name}: weight must be ≥ 0, got {self.weight}.")


@dataclass(frozen=True)
class TrackingConfig:
    """Where results go (not hashed: they say where a result is recorded, not what it is).

    Attributes:
        uri: MLflow tracking URI (default: $MLFLOW_TRACKING_URI or ``sqlite:///mlflow.db``).
        experiment: MLflow experiment (default: the dataset name).
    """

    uri: str | None = None
    experiment: str | None = None


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a result, plus where it is recorded (``tracking``, not hashed).

    Frozen; validated on construction. ``to_dict`` is what every run logs as ``config.json`` and what
    ``benchmark run --config`` reads back.
    """

    model: str
    model_params: Mapping[str, Any] = field(default_factory=dict)
    loss: tuple[LossTerm, ...] = (LossTerm("fine_ce"),)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    cv: CVConfig = field(default_factory=CVConfig)
    seed: int = 0
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_params", types.MappingProxyType(dict(self.model_params)))
        names = [t.name for t in self.loss]
        if len(set(names)) != len(names):
            raise ConfigError(f"loss terms must be unique, got {names}.")

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_params": dict(self.model_params),
            "loss": [dataclasses.asdict(t) for t in self.loss],
            "data": dataclasses.asdict(self.data),
            "train": dataclasses.asdict(self.train),
            "cv": dataclasses.asdict(self.cv),
            "seed": self.seed,
            "tracking": dataclasses.asdict(self.tracking),
        }
