"""Handlers of the ``benchmark`` subcommands: parse options into configs, call the library, render with rich."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmark.core.config import CVConfig, DataConfig
from benchmark.core.errors import BenchmarkError
from benchmark.core.overrides import parse_set_options

__all__ = [
    "cmd_ablate",
    "cmd_compare",
    "cmd_data_check",
    "cmd_data_pack",
    "cmd_datasets",
    "cmd_models",
    "cmd_perf",
    "cmd_run",
    "cmd_splits_make",
    "cmd_splits_show",
]

console = Console()
if not console.is_terminal:  # piped or captured: do not squeeze tables into 80 columns
    console = Console(width=160)


def data_config(args: argparse.Namespace) -> DataConfig:
    return DataConfig(
        name=args.dataset,
        data_dir=args.data_dir or os.environ.get("BENCHMARK_DATA_DIR"),
        labels=args.labels,
        hierarchy=args.hierarchy,
        features=args.features,
        scale=args.scale,
        seed=args.data_seed,
        cache_dir=args.cache_dir,
        preload_max_gb=args.preload_max_gb,
    )


def cv_config(args: argparse.Namespace) -> CVConfig:
    """The split protocol: ``--folds`` when given, else the dataset's recommended k (10 on the classical MIL
    sets, as Ilse et al.), else 5. Fills ``args.folds`` so messages can quote it."""
    if args.folds is None:
        from benchmark.data.loading import dataset_info

        args.folds = int(dataset_info(args.dataset).cv_defaults.get("n_folds", 5))
    if args.protocol == "mc":  # the paper's 80/10/10 Monte-Carlo splits
        return CVConfig(
            protocol="mc", n_folds=args.folds, val_fraction=0.1, test_fraction=0.1, seed=args.split_seed
        )
    return CVConfig(protocol="kfold", n_folds=args.folds, seed=args.split_seed)


def _emit(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")
    else:
        print(text)


def _run_request(args: argparse.Namespace, models: list[str]):
    from benchmark.run.runner import RunRequest

    if args.threads is not None:
        if args.threads < 1:
            raise BenchmarkError(f"--threads must be ≥ 1, got {args.threads}.")
        import torch

        torch.set_num_threads(args.threads)  # execution only: not part of the config hash

    sets = parse_set_options(args.set)
    train = dict(sets.get("train", {}))
    for option, key in (
        ("epochs", "epochs"),
        ("batch_size", "batch_size"),
        ("lr", "lr"),
        ("max_instances", "max_instances"),
        ("device", "device"),
        ("train_preset", "preset"),
    ):
        if getattr(args, option) is not None:
            train[key] = str(getattr(args, option))
    if sets.get("data") or sets.get("cv"):
        raise BenchmarkError(
            "--set supports model.*, train.* and loss.*; data and cv have their own options."
        )
    return RunRequest(
        models=models,
        data=data_config(args),
        cv=cv_config(args),
        seed=args.seed,
        train_overrides=train,
        model_overrides=sets.get("model", {}),
        loss_overrides=sets.get("loss", {}),
        tracking_uri=args.tracking_uri,
        experiment=args.experiment,
        splits_root=args.splits_dir,
        splits_file=args.splits,
        new_splits=args.new_splits,
        folds=args.fold,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from benchmark.cli.progress import RichObserver
    from benchmark.run.runner import run_benchmark

    if args.params_from or args.best:  # parameters from an Optuna study (`benchmark tune`)
        from benchmark.cli.tune import cmd_run_tuned

        return cmd_run_tuned(args)

    request = _run_request(args, [m.strip() for m in args.models.split(",") if m.strip()])
    with RichObserver(console) as observer:
        summary = run_benchmark(request, observer)
    console.print(
        f"[bold]MLflow[/bold] {summary.tracking_uri}  experiment [bold]{summary.experiment}[/bold]  "
        f"splits {summary.split_file} (sha256 {summary.split_digest[:12]}…)"
    )
    for model, skipped in summary.skipped.items():
        if skipped:
            console.print(f"{model}: skipped finished fold(s) {skipped}")
    if not args.no_compare:
        from benchmark.compare.comparison import compare

        result = compare(
            summary.tracking_uri,
            summary.experiment,
            methods=list(summary.parents),
            split_digest=summary.split_digest,
        )
        console.print(result.to_rich_table())
    console.print("Browse the runs: [bold]mlflow ui --backend-store-uri " + summary.tracking_uri + "[/bold]")
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    from benchmark.cli.progress import RichObserver
    from benchmark.run.ablate import DEFAULT_RUNGS, run_ablation

    rungs = [r.strip() for r in args.rungs.split(",") if r.strip()] if args.rungs else list(DEFAULT_RUNGS)
    with RichObserver(console) as observer:
        tables = run_ablation(_run_request(args, [args.model]), rungs, observer, model=args.model)
    for level, table in tables.items():
        if args.format == "json":
            print(table.to_json())
        elif args.format == "md":
            print(f"### {level}\n\n{table.to_markdown()}\n")
        else:
            console.print(table.to_rich_table())
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from benchmark.compare.comparison import compare, plot_comparison
    from benchmark.tracking.store import configure

    uri = configure(args.tracking_uri)
    result = compare(
        uri,
        args.experiment or args.dataset,
        level=args.level,
        per_class=args.per_class,
        methods=[m.strip() for m in args.methods.split(",")] if args.methods else None,
        split_digest=args.split_digest,
        primary=args.primary,
    )
    if args.format == "table":
        if args.output:
            _emit(result.to_markdown(), args.output)
        else:
            console.print(result.to_rich_table())
    else:
        render = {
            "md": result.to_markdown,
            "latex": result.to_latex,
            "csv": result.to_csv,
            "json": result.to_json,
        }
        _emit(render[args.format](), args.output)
    if args.plot:
        plot_comparison(result, args.plot)
        console.print(f"wrote {args.plot}", highlight=False) if args.format == "table" else None
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from benchmark.data.loading import DATASETS, ensure_registered

    ensure_registered()
    rows = []
    for entry in DATASETS:
        info = entry.meta["info"]
        rows.append(
            {
                "name": entry.name,
                "description": info.description,
                "size": info.size,
                "hierarchy": info.hierarchy.describe() if info.hierarchy else "from your hierarchy TOML",
                "needs_data_dir": info.needs_data_dir,
            }
        )
    if args.format == "json":
        print(json.dumps(rows, indent=1))
        return 0
    table = Table(title="datasets")
    for col in ("name", "description", "size", "hierarchy (coarse{fine})"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["description"], r["size"], r["hierarchy"])
    console.print(table)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    import dataclasses

    from benchmark.models import MODELS, default_loss_terms, ensure_registered

    ensure_registered()
    rows = []
    for e in MODELS:
        defaults = dataclasses.asdict(e.meta["config"]())
        rows.append(
            {
                "name": e.name,
                "description": e.meta["description"],
                "defaults": defaults,
                "loss": [
                    f"{t.weight:g}·{t.name}"
                    + ("" if t.schedule == "constant" else f" ({'1−' if t.complement else ''}{t.schedule})")
                    for t in default_loss_terms(e.name, defaults)
                ],
                "train_defaults": e.meta["train_defaults"],
                "reference_train": e.meta["reference_train"],
            }
        )
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


def _splits(args: argparse.Namespace):
    from benchmark.cv.files import get_or_create_splits
    from benchmark.data import load_dataset

    bags = load_dataset(data_config(args))
    splits, path, digest = get_or_create_splits(
        Path(args.splits_dir), bags.name, bags.table(), cv_config(args), overwrite=args.new_splits
    )
    return bags, splits, path, digest


def cmd_splits_make(args: argparse.Namespace) -> int:
    bags, splits, path, digest = _splits(args)
    if args.format == "json":
        print(json.dumps({"path": str(path), "sha256": digest, "slides": len(splits)}))
    else:
        console.print(f"{path}  sha256 {digest}  ({len(splits)} slides, {args.folds} folds, {args.protocol})")
    return 0


def cmd_splits_show(args: argparse.Namespace) -> int:
    from benchmark.cv.files import describe_splits

    bags, splits, path, digest = _splits(args)
    counts = describe_splits(splits, bags.table(), class_names=bags.hierarchy.fine)
    if args.format == "json":
        print(counts.to_json(orient="records"))
        return 0
    console.print(f"{path}  sha256 {digest}")
    table = Table()
    for col in counts.reset_index().columns:
        table.add_column(str(col), justify="right")
    for row in counts.reset_index().itertuples(index=False):
        table.add_row(*[str(v) for v in row])
    console.print(table)
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from benchmark.cli.render import render_check
    from benchmark.data.check import check_dataset

    report = check_dataset(data_config(args))
    if args.format == "json":
        print(json.dumps(report.to_dict(), indent=1, default=str))
    else:
        render_check(console, report)
    if not report.ok:
        raise BenchmarkError(
            f"dataset {args.dataset}: {len(report.problems)} problem(s); first: {report.problems[0]}"
        )
    return 0


def cmd_data_pack(args: argparse.Namespace) -> int:
    from benchmark.data.files.pack import pack_dataset

    path = pack_dataset(data_config(args), force=args.force)
    console.print(f"packed cache: {path}")
    return 0


def cmd_perf(args: argparse.Namespace) -> int:
    from benchmark.cli.render import render_perf
    from benchmark.run.perf import run_perf

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    rows = run_perf(
        data_config(args),
        models,
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_slides=args.slides,
        device=args.device,
    )
    if args.format == "json":
        print(json.dumps(rows, indent=1))
    else:
        render_perf(console, rows)
    return 0
