"""Runs from a file: ``benchmark run --config experiment.toml`` (or the ``config.json`` every run logs).

The file holds the sections of a `RunConfig` — exactly what `RunConfig.to_dict` writes — plus ``models`` for
a file that runs several models::

    models = ["abmil", "hmil"]      # or: model = "abmil" (a run's config.json)
    seed = 0

    [data]                          # `DataConfig` fields
    name = "panda-sim"

    [cv]                            # `CVConfig` fields
    n_folds = 5

    [train]                         # `TrainConfig` fields, over the model's recipe and the dataset's protocol
    epochs = 20

    [model_params]                  # the model's hyperparameters (one model only)
    dropout = 0.25

    [[loss]]                        # loss terms (one model only): name + weight/schedule/complement
    name = "fine_ce"
    weight = 1.0

    [tracking]                      # where results go (not hashed)
    uri = "sqlite:///mlflow.db"

Values are typed (TOML/JSON) and checked against the config fields; unknown sections or fields are errors
naming the file. A logged ``config.json`` fed back unchanged resolves to the same config hash, so the run
resumes and skips every finished fold.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmark.core.config import CVConfig, DataConfig, TrackingConfig
from benchmark.core.errors import ConfigError
from benchmark.core.overrides import Overrides, apply_overrides
from benchmark.run.request import RunRequest

__all__ = ["SECTIONS", "load_request"]

SECTIONS = ("model", "models", "seed", "data", "cv", "train", "model_params", "loss", "tracking")


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(
            f"--config {path}: no such file; pass a TOML or JSON run file (see README, 'Runs from a file')."
        )
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise ConfigError(f"--config {path}: not valid {kind} ({exc}); fix the file.") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"--config {path}: the top level must be a table of sections {', '.join(SECTIONS)}."
        )
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"--config {path}: unknown section(s) {unknown}; valid: {', '.join(SECTIONS)}.")
    return data


def _table(data: Mapping[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"--config {path}: [{key}] must be a table of fields, got {type(value).__name__}.")
    return value


def _models(data: Mapping[str, Any], path: Path) -> list[str]:
    if "model" in data and "models" in data:
        raise ConfigError(f"--config {path}: give either model or models, not both.")
    models = data.get("models", data.get("model", ["all"]))
    models = [m.strip() for m in models.split(",")] if isinstance(models, str) else models
    if not isinstance(models, list) or not models or not all(isinstance(m, str) and m for m in models):
        raise ConfigError(f'--config {path}: models must be a list of model names, e.g. models = ["abmil"].')
    return models


def _loss_overrides(terms: Any, path: Path) -> dict[str, Any]:
    """``[{"name": "supcon", "weight": 0.5}, …]`` → ``{"supcon.weight": 0.5, …}`` (checked on resolution)."""
    if not isinstance(terms, list) or not all(
        isinstance(t, dict) and isinstance(t.get("name"), str) for t in terms
    ):
        raise ConfigError(
            f"--config {path}: loss must be a list of tables with a name, e.g. [[loss]] name = …"
        )
    return {f"{t['name']}.{k}": v for t in terms for k, v in t.items() if k != "name"}


def load_request(path: str | Path) -> RunRequest:
    """Read a run file (TOML, or JSON for a logged ``config.json``) into a `RunRequest`."""
    path = Path(path)
    data = _read(path)
    models = _models(data, path)
    per_model = [key for key in ("model_params", "loss") if data.get(key)]
    if per_model and len(models) != 1:
        raise ConfigError(
            f"--config {path}: {' and '.join(per_model)} apply to one model; list one in models."
        )
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"--config {path}: seed must be an integer, got {seed!r}.")
    try:
        return RunRequest(
            models=models,
            data=apply_overrides(DataConfig(), _table(data, "data", path), section="data"),
            cv=apply_overrides(CVConfig(), _table(data, "cv", path), section="cv"),
            seed=seed,
            overrides=Overrides(
                train=_table(data, "train", path),
                model=_table(data, "model_params", path),
                loss=_loss_overrides(data.get("loss", []), path),
            ),
            tracking=apply_overrides(TrackingConfig(), _table(data, "tracking", path), section="tracking"),
        )
    except ConfigError as exc:
        raise ConfigError(f"--config {path}: {exc}") from None
