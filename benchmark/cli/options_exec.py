"""Where the work runs: ``--executor`` and its options (local worker processes, a SLURM job array)."""

from __future__ import annotations

import argparse

__all__ = ["add_executor_options", "add_slurm_options"]


def add_executor_options(p: argparse.ArgumentParser, *, tune: bool = False) -> None:
    """``--executor``: for ``run``, where the (method, fold) cells run; for ``tune``, where the ``--workers``
    run (processes here, or a SLURM array on the same study storage)."""
    if tune:
        g = p.add_argument_group("executors (where the --workers run)")
        g.add_argument(
            "--executor",
            choices=("local", "slurm"),
            default=None,
            help="local (default): --workers processes on this machine; slurm: --workers array tasks on the "
            "same study (a PostgreSQL --storage and an MLflow server as --tracking-uri)",
        )
        return
    g = p.add_argument_group("executors (cells = method × fold; same results as inline)")
    g.add_argument(
        "--executor",
        choices=("inline", "local", "slurm"),
        default=None,
        help="inline (default): one cell after the other in this process; local: --jobs worker processes; "
        "slurm: one SLURM job array (--slurm-* options)",
    )
    g.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="worker processes of --executor local (default: one per CPU; each gets CPUs/jobs torch threads)",
    )
    g.add_argument(
        "--devices",
        default=None,
        metavar="DEV,DEV",
        help="pin the local workers to these devices in turn, e.g. cuda:0,cuda:1 (default: --device)",
    )


def add_slurm_options(p: argparse.ArgumentParser, *, tune: bool = False) -> None:
    """``--executor slurm``: one job array per run (submitit)."""
    g = p.add_argument_group("SLURM (--executor slurm; needs pip install 'hmil-bench[slurm]')")
    g.add_argument(
        "--slurm-folder",
        default=None,
        help="job scripts and logs, on a shared file system (default ./slurm-logs)",
    )
    g.add_argument("--slurm-partition", default=None, help="partition (default: the cluster's default)")
    g.add_argument(
        "--slurm-time",
        type=int,
        default=None,
        metavar="MIN",
        help="time limit per cell in minutes (default 60)",
    )
    g.add_argument(
        "--slurm-cpus-per-task", type=int, default=None, help="CPUs per cell = its torch threads (default 1)"
    )
    g.add_argument("--slurm-gpus-per-task", type=int, default=None, help="GPUs per cell (default 0)")
    g.add_argument(
        "--slurm-mem-gb", type=float, default=None, help="memory per cell in GB (default: the partition's)"
    )
    g.add_argument(
        "--slurm-array-parallelism", type=int, default=None, help="cells running at once (default 32)"
    )
    if tune:
        return
    g.add_argument(
        "--retries", type=int, default=None, help="resubmissions of a cell whose job died (default 1; --wait)"
    )
    g.add_argument(
        "--wait",
        action="store_const",
        const=True,
        default=None,
        help="follow the array until every cell ended (default: return after submitting; see `benchmark status`)",
    )
