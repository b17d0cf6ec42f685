"""Parsers of the data and tool commands: ``datasets``, ``models``, ``splits make|show``, ``data check|stats|pack``
and ``perf``."""

from __future__ import annotations

import argparse

from benchmark.cli.options import EPILOG, add_common, add_cv_options, add_data_options, add_threads_option

__all__ = ["add_data_commands"]


def add_data_commands(sub, subs: dict[str, argparse.ArgumentParser]) -> None:  # noqa: ANN001 - argparse's private type
    """Register the data and tool commands on the subcommand parser."""
    _add_catalog(sub, subs)
    _add_splits(sub, subs)
    _add_data(sub, subs)
    _add_perf(sub, subs)


def _add_catalog(sub, subs: dict[str, argparse.ArgumentParser]) -> None:  # noqa: ANN001 - argparse's private type
    """``benchmark datasets`` and ``benchmark models``."""
    p = subs["datasets"] = sub.add_parser("datasets", help="list datasets with sizes and hierarchies")
    p.add_argument("--format", choices=("table", "json"), default="table")
    add_common(p)
    p = subs["models"] = sub.add_parser("models", help="list registered models")
    p.add_argument("--format", choices=("table", "json"), default="table")
    add_common(p)


def _add_splits(sub, subs: dict[str, argparse.ArgumentParser]) -> None:  # noqa: ANN001 - argparse's private type
    """``benchmark splits make|show``."""
    p = subs["splits"] = sub.add_parser("splits", help="make or show the split file of a dataset")
    ssub = p.add_subparsers(dest="action", metavar="ACTION")
    for name, text in (
        ("make", "create (or verify) the split file"),
        ("show", "class counts per fold and role"),
    ):
        q = ssub.add_parser(name, help=text, description=text, epilog=EPILOG)
        add_data_options(q)
        add_cv_options(q)
        q.add_argument("--format", choices=("table", "json"), default="table")
        add_common(q)
    p.set_defaults(action=None)


def _add_data(sub, subs: dict[str, argparse.ArgumentParser]) -> None:  # noqa: ANN001 - argparse's private type
    """``benchmark data check|stats|pack``."""
    p = subs["data"] = sub.add_parser("data", help="validate, describe or pack a dataset's feature files")
    dsub = p.add_subparsers(dest="action", metavar="ACTION")
    q = dsub.add_parser(
        "check",
        help="validate every slide; class counts and bag sizes",
        description="Validate every slide (missing/extra files, dims, NaN/Inf, empty bags, labels, "
        "duplicate ids) and print class counts per level and bag-size statistics.",
        epilog=EPILOG,
    )
    add_data_options(q, required=True)
    q.add_argument("--format", choices=("table", "json"), default="table")
    add_common(q)
    q = dsub.add_parser(
        "stats",
        help="feature statistics: sign, PCA spectrum, effective rank, label share",
        description="How much a dataset's instance features look like real patch embeddings: "
        "per-dimension mean/std, share of negative and zero entries, PCA spectrum (PC1, top-10, "
        "top-100 shares; PCs for 50/90 %%), participation-ratio effective rank, bag sizes, and the "
        "variance share of the instance patterns (simulated/digit sets) and of the slide labels. "
        "Works on simulated and real data (--dataset panda --data-dir …).",
        epilog=EPILOG,
    )
    add_data_options(q, required=True)
    q.add_argument(
        "--max-instances",
        type=int,
        default=20_000,
        help="instances sampled for the feature statistics (default %(default)s)",
    )
    q.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    q.add_argument("--plot", default=None, help="write the PCA-spectrum figure here (png/pdf/svg)")
    q.add_argument("--format", choices=("table", "json"), default="table")
    add_common(q)
    q = dsub.add_parser(
        "pack",
        help="build the packed memory-mapped feature cache",
        description="Read every feature file once into a packed memory-mapped cache with an index; "
        "rebuilt automatically when sources change.",
        epilog=EPILOG,
    )
    add_data_options(q, required=True)
    q.add_argument("--force", action="store_true", help="rebuild even if the cache is up to date")
    add_common(q)
    p.set_defaults(action=None)


def _add_perf(sub, subs: dict[str, argparse.ArgumentParser]) -> None:  # noqa: ANN001 - argparse's private type
    """``benchmark perf``."""
    p = subs["perf"] = sub.add_parser(
        "perf",
        help="training throughput: the trainer's batched path vs CLAM's loop vs the compute floor",
        description="Epoch time, slides/s and peak memory per model for three paths training the same "
        "seeded model on the same slides: reference (CLAM's loop: batch 1, each bag torch.load-ed from "
        "pt_files/<slide>.pt every step, validation every epoch), batched (the trainer's fit_fold) and floor "
        "(the batched path's batches pre-built on the device: compute only). Speed is given as ratios "
        "measured in the same run.",
        epilog=EPILOG,
    )
    add_data_options(p)
    g = p.add_argument_group("measurement")
    g.add_argument(
        "--bags",
        default="small",
        help="bag-size regime: small (the dataset as it is, default), realistic (300 slides of 500-1000 "
        "instances x 1024 features, generated) or N (the dataset's bags resampled to exactly N instances)",
    )
    g.add_argument(
        "--models",
        default="abmil,clam-sb,hmil",
        help="comma-separated models or 'all' (default abmil,clam-sb,hmil)",
    )
    g.add_argument(
        "--epochs",
        type=int,
        default=2,
        help="timed epochs per path, after 1 untimed warm-up epoch (default 2)",
    )
    g.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="bags per step of the batched path (default: the config's, 16)",
    )
    g.add_argument("--slides", type=int, default=None, help="use only N slides (realistic: generate N)")
    g.add_argument("--device", default="auto", help="auto (default), cpu or cuda[:i]")
    add_threads_option(g)
    g.add_argument(
        "--seed", type=int, default=0, help="seed of the models, shuffles and generated bags (default 0)"
    )
    g.add_argument(
        "--format",
        choices=("table", "json", "markdown"),
        default="table",
        help="table (default), json, or markdown (for docs/results/perf.md)",
    )
    add_common(p)
