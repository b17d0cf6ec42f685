"""Functions the Slurm tests submit through submitit.

submitit pickles them by reference, so the worker imports this module: the jobs run with the submitting
interpreter (``sys.executable``) and the repository root as working directory (``python -m`` puts the cwd
first on ``sys.path``). Kept free of pytest and submitit imports so that the worker's import stays cheap.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def describe(x: int) -> dict:
    """``x * x`` plus where the job ran: interpreter, the `benchmark` package and CLI, Slurm variables."""
    import benchmark

    print(f"job output: square of {x}", flush=True)
    print(f"job error stream: square of {x}", file=sys.stderr, flush=True)
    cli = Path(sys.executable).with_name("benchmark")
    help_text = subprocess.run([str(cli), "--help"], capture_output=True, text=True, check=True).stdout
    return {
        "value": x * x,
        "python": sys.executable,
        "benchmark": benchmark.__file__,
        "cli_help": help_text.splitlines()[0],
        "cwd": os.getcwd(),
        "env": {k: v for k, v in os.environ.items() if k.startswith(("SLURM_", "SUBMITIT_"))},
    }


def touch_then_sleep(marker: str, seconds: float) -> str:
    """Create ``marker`` (the job has started), then sleep: a job to cancel while it runs."""
    Path(marker).touch()
    time.sleep(seconds)
    return "slept"
