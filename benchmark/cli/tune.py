"""``benchmark tune`` and ``benchmark run --params-from``/``--best``: options, handlers and rich progress.

The logic lives in `studies` (search spaces, objective, storages, workers); this module only parses options,
calls it and renders. Imports of torch/optuna/mlflow stay inside the handlers so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

__all__ = ["add_run_tuned_args", "add_tune_parser", "cmd_run_tuned", "cmd_tune"]

_STORAGE_HELP = (
    "Optuna storage: sqlite:///optuna.db (default, one process), postgresql://user:pw@host:5432/db "
    "(many workers and machines; needs the postgres extra) or journal:FILE (many processes, one machine)"
)


def add_tune_parser(sub, subs: dict[str, argparse.ArgumentParser]) -> None:  # noqa: ANN001 - argparse's private type
    """Register ``benchmark tune`` on the subcommand parser."""
    from benchmark.cli.args import _EPILOG, _common, _cv_args, _data_args

    p = subs["tune"] = sub.add_parser(
        "tune",
        help="Optuna study per model: equal budget, validation folds only, resumable, many workers",
        description="Tune each model with Optuna on the validation parts of the run's folds (test slides are never "
        "loaded). The objective is the mean validation metric over folds; each fold is reported for pruning. "
        "--trials adds trials to the study (4 then 2 gives 6). Every model gets the same trials, epochs, early "
        "stopping and folds. Each trial is an MLflow run in experiment tune-<study>. See docs/tuning.md.",
        epilog=_EPILOG,
    )
    _data_args(p)
    _cv_args(p)
    p.add_argument_group("tracking").add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow store (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db); "
        "each study logs to experiment tune-<study>",
    )
    g = p.add_argument_group("study")
    g.add_argument(
        "--models",
        "--model",
        dest="models",
        required=True,
        help="model to tune, a comma-separated list or 'all' (one study per model, same budget)",
    )
    g.add_argument("--trials", type=int, required=True, help="trials to add to each study in this invocation")
    g.add_argument(
        "--timeout", type=float, default=None, help="stop starting new trials after S seconds (per worker)"
    )
    g.add_argument("--storage", default=None, help=_STORAGE_HELP)
    g.add_argument(
        "--study",
        default=None,
        help="study name (one model) or prefix NAME-<model> (several); default <dataset>-<model>",
    )
    g.add_argument(
        "--workers",
        type=int,
        default=1,
        help="local worker processes filling the study together (>1 needs PostgreSQL or journal:FILE)",
    )
    g.add_argument(
        "--metric",
        default="fine.auc",
        help="validation metric to maximise, averaged over folds (default fine.auc; any train.selection "
        "metric such as coarse.auc or fine.balanced_accuracy)",
    )
    g.add_argument(
        "--pruner",
        choices=("wilcoxon", "median", "none"),
        default="wilcoxon",
        help="per-fold pruning: wilcoxon (paired test vs the best trial, default), median or none",
    )
    g.add_argument(
        "--no-default-trial",
        action="store_true",
        help="do not enqueue the model's default configuration as trial 0 of a new study",
    )
    g.add_argument(
        "--heartbeat",
        type=int,
        default=60,
        help="seconds between heartbeats of a running trial (RDB storages; default 60)",
    )
    g.add_argument(
        "--grace",
        type=int,
        default=None,
        help="seconds without heartbeat after which a trial counts as dead and is retried (default 2×)",
    )
    g.add_argument(
        "--max-retry", type=int, default=3, help="retries of a trial whose worker died (default 3)"
    )
    t = p.add_argument_group("budget and training")
    t.add_argument("--epochs", type=int, default=None, help="maximum epochs per fold (default 20)")
    t.add_argument(
        "--patience", type=int, default=None, help="early-stopping patience in epochs (default 5; 0 = off)"
    )
    t.add_argument("--device", default=None, help="auto (default), cpu or cuda[:i]")
    t.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads per worker (default: 1 with --workers > 1, else torch's choice)",
    )
    t.add_argument("--seed", type=int, default=0, help="run seed; fold seeds derive from it (default 0)")
    t.add_argument(
        "--fold",
        type=int,
        action="append",
        default=None,
        help="tune on this fold only (repeatable; default all folds)",
    )
    t.add_argument("--splits", default=None, help="use this split CSV instead of the generated one")
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="fix a config field for every trial: train.*, model.* or loss.<term>.<field>",
    )
    p.add_argument(
        "--format", choices=("table", "json"), default="table", help="summary format (default table)"
    )
    _common(p)


def add_run_tuned_args(p: argparse.ArgumentParser) -> None:
    """``benchmark run`` options that take parameters from a study."""
    g = p.add_argument_group("tuned parameters")
    g.add_argument(
        "--params-from",
        default=None,
        metavar="STUDY",
        help="train and test with the best trial's parameters of this study (recorded on the run)",
    )
    g.add_argument(
        "--best",
        action="store_true",
        help="for each model, use the best parameters of its default study <dataset>-<model>",
    )
    g.add_argument(
        "--storage", default=None, help="Optuna storage of the study (default sqlite:///optuna.db)"
    )


def _tune_request(args: argparse.Namespace):
    from benchmark.cli.commands import cv_config, data_config
    from benchmark.core.errors import ConfigError
    from benchmark.core.overrides import parse_set_options
    from benchmark.tune.engine import TuneRequest

    sets = parse_set_options(args.set)
    if sets.get("data") or sets.get("cv"):
        raise ConfigError("--set supports model.*, train.* and loss.*; data and cv have their own options.")
    train = dict(sets.get("train", {}))
    for option in ("epochs", "patience", "device"):
        if getattr(args, option) is not None:
            train[option] = str(getattr(args, option))
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be ≥ 1, got {args.threads}.")
    return TuneRequest(
        models=[m.strip() for m in args.models.split(",") if m.strip()],
        trials=args.trials,
        data=data_config(args),
        cv=cv_config(args),
        seed=args.seed,
        timeout=args.timeout,
        storage=args.storage,
        study=args.study,
        workers=args.workers,
        train_overrides=train,
        model_overrides=sets.get("model", {}),
        loss_overrides=sets.get("loss", {}),
        metric=args.metric,
        pruner=args.pruner,
        folds=args.fold,
        tracking_uri=args.tracking_uri,
        splits_root=args.splits_dir,
        splits_file=args.splits,
        new_splits=args.new_splits,
        heartbeat=args.heartbeat,
        grace=args.grace,
        max_retry=args.max_retry,
        threads=args.threads,
        default_trial=not args.no_default_trial,
    )


def cmd_tune(args: argparse.Namespace) -> int:
    from benchmark.cli.commands import console
    from benchmark.cli.tune_render import RichTuneObserver, summary_table
    from benchmark.tune.engine import run_tune

    request = _tune_request(args)
    if args.threads is not None:  # this process's trials (workers > 1 set their own, default 1)
        import torch

        torch.set_num_threads(args.threads)
    from rich.console import Console

    # With --format json, stdout carries only the JSON document; progress goes to stderr.
    with RichTuneObserver(Console(stderr=True) if args.format == "json" else console) as observer:
        summaries = run_tune(request, observer)
    if args.format == "json":
        print(json.dumps([dataclasses.asdict(s) for s in summaries], indent=1, default=str))
        return 0
    console.print(summary_table(summaries))
    console.print(
        f"Optuna storage {request.storage_url}; dashboard: [bold]optuna-dashboard {request.storage_url}"
        "[/bold]. Train and test with the best parameters: [bold]benchmark run --best[/bold] "
        "or --params-from STUDY."
    )
    return 0


def cmd_run_tuned(args: argparse.Namespace) -> int:
    """``benchmark run --params-from STUDY`` / ``--best``: one run per model with its study's best parameters."""
    from benchmark.cli.commands import _run_request, console
    from benchmark.cli.progress import RichObserver
    from benchmark.core.errors import ConfigError
    from benchmark.run.resolve import expand_models
    from benchmark.run.runner import run_benchmark
    from benchmark.tune.best import best_params
    from benchmark.tune.space import Overrides

    if args.params_from and args.best:
        raise ConfigError("--params-from and --best exclude each other; use one.")
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.params_from:
        best = best_params(args.params_from, args.storage)
        if names != ["all"] and names != [best.model]:
            raise ConfigError(
                f"--params-from {args.params_from} tuned model {best.model!r}, not {','.join(names)}; "
                f"drop --models or pass --models {best.model}."
            )
        plan = [(best.model, best)]
    else:
        plan = [(m, best_params(f"{args.dataset}-{m}", args.storage)) for m in expand_models(names)]
    base = _run_request(args, [plan[0][0]])
    cli = Overrides(train=base.train_overrides, model=base.model_overrides, loss=base.loss_overrides)
    parents, summary = {}, None
    with RichObserver(console) as observer:
        for model, best in plan:
            merged = Overrides.combine(best.overrides, cli)  # the study's parameters; explicit options win
            request = dataclasses.replace(
                base,
                models=[model],
                train_overrides=merged.train,
                model_overrides=merged.model,
                loss_overrides=merged.loss,
                label=f"{model}-tuned",
                parent_tags=best.tags(),
            )
            summary = run_benchmark(request, observer)
            parents.update(summary.parents)
            console.print(
                f"{model}-tuned: parameters of study {best.study} trial {best.trial} "
                f"(validation {best.value:.4f})"
            )
    if not args.no_compare and summary is not None:
        from benchmark.compare.comparison import compare

        result = compare(
            summary.tracking_uri, summary.experiment, methods=list(parents), split_digest=summary.split_digest
        )
        console.print(result.to_rich_table())
    return 0
