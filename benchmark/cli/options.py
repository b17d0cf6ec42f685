"""Option groups shared by the ``benchmark`` subcommands (help texts live here; defaults are the configs').

Options that map onto a config field default to None ("not given"): `benchmark.cli.requests` then takes the
value from ``--config`` or the config dataclass, so a default is written once, in `benchmark.core.config`.
"""

from __future__ import annotations

import argparse

from benchmark.cli.options_exec import add_executor_options, add_slurm_options

__all__ = [
    "EPILOG",
    "add_common",
    "add_cv_options",
    "add_data_options",
    "add_run_options",
    "add_threads_option",
    "add_tracking_options",
    "add_tuned_options",
]

EPILOG = "Exit codes: 0 ok, 2 user error, 1 unexpected error (add --debug for the traceback)."


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")


def add_data_options(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    """Options that build the `DataConfig` (defaults are the config's; None = not given)."""
    g = p.add_argument_group("data")
    g.add_argument(
        "--dataset",
        default=None,
        required=required,
        help="dataset name (see `benchmark datasets`)" + ("" if required else "; default: panda-sim"),
    )
    g.add_argument("--data-dir", default=None, help="root of your data (default: $BENCHMARK_DATA_DIR)")
    g.add_argument("--labels", default=None, help="labels CSV (csv/bracs datasets; default under --data-dir)")
    g.add_argument("--hierarchy", default=None, help="hierarchy TOML for the csv dataset")
    g.add_argument("--features", default=None, help="feature directory (default: detected under --data-dir)")
    g.add_argument(
        "--scale", type=float, default=None, help="size multiplier for simulated datasets (default 1)"
    )
    g.add_argument(
        "--data-seed", type=int, default=None, help="generator seed of simulated datasets (default 0)"
    )
    g.add_argument(
        "--cache-dir", default=None, help="generated data and packed caches (default .benchmark-cache)"
    )
    g.add_argument(
        "--feature-dtype",
        choices=("source", "fp16", "fp32"),
        default=None,
        help="precision of the features in memory: source (as stored, default), fp16 (halves an fp32 set; "
        "results move within fp16 rounding) or fp32",
    )
    g.add_argument(
        "--preload-max-gb",
        type=float,
        default=None,
        help="preload features in RAM up to this size, else use the memory-mapped pack (default 8)",
    )


def add_cv_options(p: argparse.ArgumentParser) -> None:
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
        default=None,
        help="kfold: stratified case-grouped k-fold (default); mc: Monte-Carlo 80/10/10 (HMIL paper)",
    )
    g.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="repeated k-fold: R different k-fold partitions, k·R paired folds (default 1); more folds is "
        "how the paired tests of `benchmark compare` gain power (docs/metrics.md)",
    )
    g.add_argument("--split-seed", type=int, default=None, help="seed of the fold assignment (default 0)")
    g.add_argument(
        "--splits-dir", default=None, help="where split CSVs are saved and reused (default ./splits)"
    )
    g.add_argument(
        "--new-splits",
        action="store_true",
        help="regenerate the split file and accept a digest differing from the recorded one",
    )


def add_threads_option(g: argparse._ActionsContainer) -> None:
    """``--threads``: torch CPU threads of the process (never more than the CPUs it may use)."""
    g.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: the CPUs this process may use; 1 per process when several share "
        "cores); recorded with the run",
    )


def add_tracking_options(p: argparse.ArgumentParser, *, experiment: str | None = "the dataset name") -> None:
    """``--tracking-uri`` and, unless the command names its experiments itself (``experiment=None``: then
    the text says how it names them), ``--experiment``."""
    g = p.add_argument_group("tracking")
    where = "" if experiment is None or experiment == "the dataset name" else f"; {experiment}"
    g.add_argument(
        "--tracking-uri",
        default=None,
        help=f"MLflow store (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db){where}",
    )
    if experiment == "the dataset name":
        g.add_argument("--experiment", default=None, help="MLflow experiment (default: the dataset name)")


def _add_execution_options(g: argparse._ArgumentGroup) -> None:
    """How training executes on the hardware: batch memory cap, precision fallback, compilation, residency."""
    g.add_argument(
        "--max-batch-instances",
        type=int,
        default=None,
        help="cap on padded instances per training batch (bags × longest bag); larger batches are cut into "
        "smaller steps (default: no cap)",
    )
    g.add_argument(
        "--no-amp",
        dest="amp",
        action="store_const",
        const=False,
        default=None,
        help="fp32 on CUDA instead of bf16 autocast (the fallback when a model misbehaves in bf16)",
    )
    g.add_argument(
        "--compile",
        action="store_const",
        const=True,
        default=None,
        help="torch.compile the model (worth it on GPU for long runs; dropout masks differ, so it is part of the config hash)",
    )
    g.add_argument(
        "--features-on-device",
        action="store_const",
        const=True,
        default=None,
        help="keep all features on the GPU when they fit (no per-batch host→device copy; not hashed)",
    )


def add_run_options(p: argparse.ArgumentParser, *, models: bool) -> None:
    """Options shared by `run` and `ablate`."""
    add_data_options(p)
    add_cv_options(p)
    add_tracking_options(p)
    g = p.add_argument_group("models and training")
    g.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="read the run from a TOML or JSON file (a run's logged config.json replays it; options given "
        "here win over the file's values)",
    )
    if models:
        g.add_argument("--models", default=None, help="comma-separated model names or 'all' (default: all)")
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
    add_threads_option(g)
    _add_execution_options(g)
    add_executor_options(p)
    add_slurm_options(p)
    g.add_argument("--seed", type=int, default=None, help="run seed; fold seeds derive from it (default 0)")
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
    g.add_argument(
        "--heatmaps",
        type=int,
        default=None,
        metavar="K",
        help="log the attention heatmaps of the first K test slides (by id) in every fold run as "
        "figures/heatmap_<slide>.png (default 0; models with attention only)",
    )
    g.add_argument("--no-compare", action="store_true", help="do not print the comparison table at the end")
    add_common(p)


def add_tuned_options(p: argparse.ArgumentParser) -> None:
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
