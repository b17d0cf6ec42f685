"""How a run is identified: its config flattened to dotted MLflow params, and the hash of the fields that
determine the result (the ``benchmark.config_hash`` tag that resume and `benchmark compare` key on)."""

from __future__ import annotations

import hashlib
import json

from benchmark.core.config import RunConfig

__all__ = ["HASHED_UNLESS_DEFAULT", "HASH_EXCLUDED", "config_hash", "flatten"]

# Fields that say where/how a run executes, not what it computes: excluded from the hash so that a
# rerun on another machine or with another cache location resumes the same MLflow run.
HASH_EXCLUDED = {
    "data.data_dir",
    "data.cache_dir",
    "data.preload_max_gb",
    "train.device",
    "data.labels",
    "data.features",
    "data.hierarchy",
    "train.eval_batch_size",
    "train.preset",  # a label: the budget fields it resolves to are hashed
    "cv.splits_dir",
    "cv.splits_file",  # the split digest identifies the folds
    "tracking.uri",
    "train.features_on_device",
    "tracking.experiment",
}


def flatten(config: RunConfig) -> dict[str, str]:
    """Dotted string params for MLflow, e.g. ``train.lr``, ``model.dropout``, ``loss.fine_ce.weight``."""
    d = config.to_dict()
    out: dict[str, str] = {"model.name": d["model"], "seed": str(d["seed"])}
    for k, v in sorted(d["model_params"].items()):
        out[f"model.{k}"] = json.dumps(v) if isinstance(v, list | dict | tuple) else str(v)
    for term in d["loss"]:
        for k in ("weight", "schedule", "complement"):
            out[f"loss.{term['name']}.{k}"] = str(term[k])
    for section in ("data", "train", "cv", "tracking"):
        for k, v in d[section].items():
            out[f"{section}.{k}"] = str(v)
    return out


# Result-determining fields added after runs were first recorded: hashed only when they differ from this
# default, so that adding a field never changes the hash (and the resume) of an existing run.
HASHED_UNLESS_DEFAULT = {
    "data.feature_dtype": "source",
    "train.max_batch_instances": "None",
    "train.compile": "False",  # compiled kernels draw dropout masks from another random stream
}


def config_hash(config: RunConfig) -> str:
    """sha256 (first 16 hex chars) of the canonical JSON of the result-determining fields."""
    flat = {
        k: v
        for k, v in flatten(config).items()
        if k not in HASH_EXCLUDED and HASHED_UNLESS_DEFAULT.get(k, object()) != v
    }
    return hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()[:16]
