"""``benchmark datasets`` and ``benchmark models``: what is registered (rich table or JSON).

Neither imports torch-heavy code beyond the registries themselves.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from rich.table import Table

from benchmark.cli.render import console
from benchmark.data.loading import DATASETS
from benchmark.data.loading import ensure_registered as ensure_datasets
from benchmark.models import MODELS, ModelSpec
from benchmark.models import ensure_registered as ensure_models

__all__ = ["cmd_datasets", "cmd_models"]


def cmd_datasets(args: argparse.Namespace) -> int:
    ensure_datasets()
    rows = [
        {
            "name": spec.name,
            "description": spec.info.description,
            "size": spec.info.size,
            "hierarchy": spec.info.hierarchy.describe()
            if spec.info.hierarchy
            else "from your hierarchy TOML",
            "needs_data_dir": spec.info.needs_data_dir,
            "layout": spec.info.layout,
        }
        for spec in DATASETS
    ]
    if args.format == "json":
        print(json.dumps(rows, indent=1))
        return 0
    table = Table(title="datasets")
    for col in ("name", "description", "size", "hierarchy (coarse{fine})"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["description"], r["size"], r["hierarchy"])
    console.print(table)
    for r in rows:  # the datasets that read your files: where the files go (data errors point here)
        if r["layout"]:
            console.print(f"\n{r['name']} expects", style="bold", markup=False, highlight=False)
            console.print(r["layout"], markup=False, highlight=False)
    return 0


def _model_row(spec: ModelSpec) -> dict[str, object]:
    defaults = dataclasses.asdict(spec.config())
    return {
        "name": spec.name,
        "description": spec.description,
        "defaults": defaults,
        "loss": [
            f"{t.weight:g}·{t.name}"
            + ("" if t.schedule == "constant" else f" ({'1−' if t.complement else ''}{t.schedule})")
            for t in spec.loss_terms(defaults)
        ],
        "train_defaults": dict(spec.train_defaults),
        "reference_train": dict(spec.reference_train),
    }


def cmd_models(args: argparse.Namespace) -> int:
    ensure_models()
    rows = [_model_row(spec) for spec in MODELS]
    if args.format == "json":
        print(json.dumps(rows, indent=1))
        return 0
    table = Table(title="models")
    for col in ("name", "description", "hyperparameters (defaults)", "loss terms", "training recipe"):
        table.add_column(col, overflow="fold")
    for r in rows:
        recipe = ", ".join(f"{k}={v}" for k, v in r["train_defaults"].items()) or "harness defaults"
        if r["reference_train"]:
            recipe += "; reference preset: " + ", ".join(f"{k}={v}" for k, v in r["reference_train"].items())
        table.add_row(
            r["name"],
            r["description"],
            ", ".join(f"{k}={v}" for k, v in r["defaults"].items()),
            " + ".join(r["loss"]),
            recipe,
        )
    console.print(table)
    console.print(
        "Every model trains with the same budget (bags per step, epochs, early stopping, selection) "
        "unless --train-preset reference is given."
    )
    return 0
