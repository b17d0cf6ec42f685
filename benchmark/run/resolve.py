"""How a run's configuration is resolved: model names, the training-config precedence, loss overrides.

Kept apart from `benchmark.run.runner` (which executes runs) because tuning, validation and the scripts resolve
configs without running anything.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from benchmark.core.config import CVConfig, DataConfig, LossTerm, RunConfig, TrackingConfig, TrainConfig
from benchmark.core.errors import ConfigError
from benchmark.core.overrides import Overrides, apply_overrides
from benchmark.data.loading import dataset_info
from benchmark.models import MODELS, ensure_registered, model_spec, resolve_model_params
from benchmark.run.request import RunRequest

__all__ = [
    "expand_models",
    "log_dataset_protocol",
    "override_loss_terms",
    "resolve_configs",
    "resolve_run_config",
]

log = logging.getLogger(__name__)


def expand_models(names: Sequence[str], *, option: str | None = None) -> list[str]:
    """Canonical registry names in order (``"ABMIL"`` → ``"abmil"``, duplicates dropped), ``["all"]`` expanded;
    unknown names list the valid ones and the closest match, naming ``option`` (default ``--models``)."""
    ensure_registered()
    if [n.lower() for n in names] == ["all"]:
        return MODELS.names()
    return list(dict.fromkeys(MODELS.resolve(name, option=option) for name in names))


def resolve_run_config(
    model: str,
    *,
    data: DataConfig,
    cv: CVConfig,
    seed: int = 0,
    overrides: Overrides | None = None,
    tracking: TrackingConfig | None = None,
) -> RunConfig:
    """The run's config. Training fields by precedence (later wins):

    1. the harness defaults (`TrainConfig`), including the budget every method shares;
    2. the model's recipe (its registered ``train_defaults``: lr, weight decay, optimiser);
    3. the dataset's recommended protocol (`DatasetInfo.train_defaults`, e.g. Ilse et al.'s on MUSK);
    4. with ``train.preset=reference``, the model's reference budget (e.g. HMIL's 64 bags per step);
    5. the user's overrides (``--set train.*``, ``--batch-size``, a config file, …).
    """
    overrides = overrides or Overrides()
    spec = model_spec(model)
    train = dataclasses.replace(TrainConfig(), **spec.train_defaults)
    train = dataclasses.replace(train, **dataset_info(data.name).train_defaults)
    preset = {"preset": overrides.train["preset"]} if "preset" in overrides.train else {}
    train = apply_overrides(train, preset, section="train")
    if train.preset == "reference":
        train = dataclasses.replace(train, **spec.reference_train)
    train = apply_overrides(train, overrides.train, section="train")
    params = resolve_model_params(model, overrides.model)
    loss = override_loss_terms(spec.loss_terms(params), overrides.loss)
    return RunConfig(
        model=model,
        model_params=params,
        loss=loss,
        data=data,
        train=train,
        cv=cv,
        seed=seed,
        tracking=tracking or TrackingConfig(),
    )


def override_loss_terms(terms: tuple[LossTerm, ...], overrides: Mapping[str, Any]) -> tuple[LossTerm, ...]:
    """Apply ``loss.<term>.<field>=value`` overrides (e.g. ``supcon.weight=0.5``); unknown terms are errors."""
    by_name = {t.name: t for t in terms}
    for key, raw in overrides.items():
        term, dot, fld = key.partition(".")
        if not dot or term not in by_name:
            raise ConfigError(
                f"--set loss.{key}: unknown loss term {term!r}; this model's terms: {sorted(by_name)} "
                "(form: loss.<term>.weight=0.5)."
            )
        by_name[term] = apply_overrides(by_name[term], {fld: raw}, section=f"loss.{term}")
    return tuple(by_name[t.name] for t in terms)


def log_dataset_protocol(data: DataConfig, train_overrides: Mapping[str, Any], cv: CVConfig) -> None:
    """Say in one line when the dataset's recommended training protocol is applied (and what it sets)."""
    info = dataset_info(data.name)
    applied = {k: v for k, v in info.train_defaults.items() if k not in train_overrides}
    if applied:
        fields = ", ".join(f"{k}={v}" for k, v in applied.items())
        folds = f"{cv.n_folds}-fold CV; " if info.cv_defaults else ""
        log.info(
            "%s: using the dataset's recommended protocol (%s): %s%s; override any field with "
            "--set train.<field>=… (and --folds)",
            data.name,
            info.protocol or "registered",
            folds,
            fields,
        )


def resolve_configs(request: RunRequest) -> dict[str, RunConfig]:
    """Model name → resolved (and validated) config, for every model of the request."""
    models = expand_models(request.models)
    if len(models) > 1 and (request.overrides.model or request.overrides.loss or request.label):
        raise ConfigError("--set model.*/loss.* and labels apply to one model; run models separately.")
    return {
        m: resolve_run_config(
            m,
            data=request.data,
            cv=request.cv,
            seed=request.seed,
            overrides=request.overrides,
            tracking=request.tracking,
        )
        for m in models
    }
