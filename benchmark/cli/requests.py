"""Parsed options → the typed configs and the `RunRequest` of `benchmark.api` (the tune and validate commands
build their requests from these in their own modules).

Options left at None were not given: the value then comes from ``--config FILE`` when there is one, else from
the config dataclass's default. Typed values go straight into the request (``--batch-size 16`` stays the
int 16); only ``--set`` strings are cast, per field, when the config is resolved.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
from collections.abc import Sequence

from benchmark.core.config import CVConfig, DataConfig, TrackingConfig
from benchmark.core.overrides import Overrides
from benchmark.data.loading import dataset_info, dataset_spec
from benchmark.run.config_file import load_request
from benchmark.run.request import RunRequest, SlurmOptions

__all__ = [
    "check_tracking",
    "cv_config",
    "data_config",
    "model_names",
    "names",
    "overrides",
    "run_request",
    "tracking_config",
]

# option dest → DataConfig field / TrainConfig field
_DATA_OPTIONS = {
    "dataset": "name",
    "data_dir": "data_dir",
    "labels": "labels",
    "hierarchy": "hierarchy",
    "features": "features",
    "scale": "scale",
    "data_seed": "seed",
    "cache_dir": "cache_dir",
    "preload_max_gb": "preload_max_gb",
    "feature_dtype": "feature_dtype",
}
_TRAIN_OPTIONS = {
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "max_instances": "max_instances",
    "device": "device",
    "train_preset": "preset",
    "patience": "patience",
    "max_batch_instances": "max_batch_instances",
    "amp": "amp",
    "compile": "compile",
    "features_on_device": "features_on_device",
}


def names(text: str) -> list[str]:
    """``"abmil, hmil"`` → ``["abmil", "hmil"]``."""
    return [x.strip() for x in text.split(",") if x.strip()]


def _given(args: argparse.Namespace, options: dict[str, str]) -> dict[str, object]:
    return {
        field: getattr(args, opt) for opt, field in options.items() if getattr(args, opt, None) is not None
    }


def data_config(args: argparse.Namespace, base: DataConfig | None = None) -> DataConfig:
    """The dataset options over ``base`` (a run file's) or the defaults; $BENCHMARK_DATA_DIR when no data dir.

    The dataset name is checked first (unknown names list the valid ones) and kept in its canonical lowercase
    form (``PANDA-SIM`` → ``panda-sim``), so configs and their hashes do not depend on how it was typed.
    """
    data = dataclasses.replace(base or DataConfig(), **_given(args, _DATA_OPTIONS))
    data = dataclasses.replace(data, name=dataset_spec(data.name).name)
    if data.data_dir is None and os.environ.get("BENCHMARK_DATA_DIR"):
        data = dataclasses.replace(data, data_dir=os.environ["BENCHMARK_DATA_DIR"])
    return data


def cv_config(args: argparse.Namespace, dataset: str, base: CVConfig | None = None) -> CVConfig:
    """The split protocol: ``--folds`` when given, else the run file's, else the dataset's recommended k
    (10 on the classical MIL sets, as Ilse et al.), else 5; ``--protocol mc`` is the paper's 80/10/10."""
    cv = base or CVConfig(n_folds=int(dataset_info(dataset).cv_defaults.get("n_folds", 5)))
    if args.protocol == "mc":
        cv = dataclasses.replace(cv, protocol="mc", val_fraction=0.1, test_fraction=0.1)
    elif args.protocol == "kfold":
        cv = dataclasses.replace(cv, protocol="kfold", val_fraction=0.2, test_fraction=0.1)
    given = _given(
        args,
        {
            "folds": "n_folds",
            "repeats": "repeats",
            "split_seed": "seed",
            "splits_dir": "splits_dir",
            "splits": "splits_file",
        },
    )
    return dataclasses.replace(cv, **given)


def tracking_config(args: argparse.Namespace, base: TrackingConfig | None = None) -> TrackingConfig:
    """The tracking options over ``base``; a malformed URI is refused here, before any data are loaded."""
    tracking = dataclasses.replace(
        base or TrackingConfig(), **_given(args, {"tracking_uri": "uri", "experiment": "experiment"})
    )
    check_tracking(tracking.uri)
    return tracking


def check_tracking(uri: str | None) -> None:
    """`check_tracking_uri` on ``uri`` (or $MLFLOW_TRACKING_URI), naming the option or variable it came from."""
    # imported here: it imports MLflow, which only the commands that track need
    from benchmark.tracking.store import check_tracking_uri

    env = os.environ.get("MLFLOW_TRACKING_URI")
    if uri or env:
        check_tracking_uri(uri or env, option="--tracking-uri" if uri else "MLFLOW_TRACKING_URI")


def model_names(models: Sequence[str], option: str = "--models") -> list[str]:
    """``models`` as canonical registry names (``ABMIL`` → ``abmil``; ``all`` expanded), unknown ones refused
    with the valid names, naming ``option``: checked before any number, so a typo is the error reported."""
    # imported here: it imports the models (torch), which only the commands that train need
    from benchmark.run.resolve import expand_models

    return expand_models(models, option=option)


def overrides(args: argparse.Namespace) -> Overrides:
    """``--set`` values, then the typed training options (which win over a ``--set`` of the same field)."""
    return Overrides.combine(
        Overrides.from_set_options(args.set), Overrides(train=_given(args, _TRAIN_OPTIONS))
    )


def slurm_options(args: argparse.Namespace) -> SlurmOptions:
    """The ``--slurm-*``, ``--retries`` and ``--wait`` options over the defaults."""
    given = _given(
        args,
        {
            "slurm_folder": "folder",
            "slurm_partition": "partition",
            "slurm_time": "time_min",
            "slurm_cpus_per_task": "cpus_per_task",
            "slurm_gpus_per_task": "gpus_per_task",
            "slurm_mem_gb": "mem_gb",
            "slurm_array_parallelism": "array_parallelism",
            "retries": "retries",
            "wait": "wait",
        },
    )
    return SlurmOptions(**given)


def command_line(args: argparse.Namespace) -> str | None:
    """``benchmark <the arguments as typed>`` (recorded on the run), or None when not run from the CLI."""
    argv = getattr(args, "argv", None)
    return "benchmark " + shlex.join(argv) if argv else None


def run_request(args: argparse.Namespace, models: Sequence[str] | None = None) -> RunRequest:
    """``benchmark run``/``ablate`` options (over ``--config FILE`` when given) as a `RunRequest`."""
    base = load_request(args.config) if getattr(args, "config", None) else None
    data = data_config(args, base.data if base else None)
    if models is None:
        models = names(args.models) if args.models else (list(base.models) if base else ["all"])
        # names before numbers: a mistyped model is reported before a --folds rule ("all" stays: --params-from)
        models = ["all"] if [m.lower() for m in models] == ["all"] else model_names(models)
    seed = args.seed if args.seed is not None else (base.seed if base else 0)
    tracking = tracking_config(args, base.tracking if base else None)
    return RunRequest(
        models=models,
        data=data,
        cv=cv_config(args, data.name, base.cv if base else None),
        seed=seed,
        overrides=Overrides.combine(base.overrides, overrides(args)) if base else overrides(args),
        tracking=tracking,
        new_splits=args.new_splits,
        folds=args.fold,
        threads=args.threads,
        command=command_line(args),
        slurm=slurm_options(args),
        devices=tuple(d.strip() for d in (getattr(args, "devices", None) or "").split(",") if d.strip()),
        **_given(args, {"heatmaps": "heatmaps", "executor": "executor", "jobs": "jobs"}),
    )
