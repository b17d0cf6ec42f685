"""Which RUNNING child runs still have a live worker, and marking the dead ones KILLED.

A process killed with SIGKILL (or a SLURM job cancelled past its grace period) cannot end its child run, which
stays RUNNING. Each child records where it runs (`worker_tags`: host, pid and the SLURM job); a RUNNING child
counts as alive when its SLURM job is still queued or running (``squeue``), or when it runs on this host in a
live process. Children without these tags (older runs) or on other hosts without SLURM count as dead, so a
resumed run redoes them, as before.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

from mlflow.entities import Run, RunStatus
from mlflow.tracking import MlflowClient

from benchmark.tracking.store import children

__all__ = ["is_alive", "live_folds", "mark_stale_children", "mark_stale_fold", "worker_tags"]

_HOST, _PID, _SLURM = "benchmark.worker.host", "benchmark.worker.pid", "benchmark.worker.slurm_job"


def worker_tags() -> dict[str, str]:
    """Tags naming this process: host, pid and, inside a SLURM job, the job (array jobs as ``A_i``)."""
    tags = {_HOST: socket.gethostname(), _PID: str(os.getpid())}
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    job = f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID")
    if job:
        tags[_SLURM] = job
    return tags


def _slurm_job_alive(job: str) -> bool:
    if shutil.which("squeue") is None:
        return False
    try:
        out = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return any(state in out for state in ("RUNNING", "PENDING", "CONFIGURING", "COMPLETING", "REQUEUED"))


def is_alive(run: Run) -> bool:
    """Whether a RUNNING child's worker still runs (see the module docstring)."""
    tags = run.data.tags
    if tags.get(_SLURM):
        return _slurm_job_alive(tags[_SLURM])
    if tags.get(_HOST) == socket.gethostname() and tags.get(_PID, "").isdigit():
        try:
            os.kill(int(tags[_PID]), 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    return False


def _mark(client: MlflowClient, run: Run, note: str) -> None:
    client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
    client.set_tag(run.info.run_id, "benchmark.note", note)


def mark_stale_children(client: MlflowClient, exp_id: str, parent_id: str) -> int:
    """RUNNING children whose worker died become KILLED (a live worker's are left alone); returns count."""
    n = 0
    for run in children(client, exp_id, parent_id):
        if run.info.status in ("RUNNING", "SCHEDULED") and not is_alive(run):
            _mark(client, run, "marked KILLED on resume: its process died")
            n += 1
    return n


def mark_stale_fold(client: MlflowClient, exp_id: str, parent_id: str, fold: int, why: str) -> int:
    """Mark ``fold``'s RUNNING children KILLED because their job is known dead (``why``); returns count."""
    n = 0
    for run in children(client, exp_id, parent_id):
        if run.info.status in ("RUNNING", "SCHEDULED") and run.data.tags.get("benchmark.fold") == str(fold):
            _mark(client, run, f"marked KILLED: {why}")
            n += 1
    return n


def live_folds(client: MlflowClient, exp_id: str, parent_id: str) -> set[int]:
    """Folds with a RUNNING child whose worker is alive (being run elsewhere right now)."""
    return {
        int(run.data.tags["benchmark.fold"])
        for run in children(client, exp_id, parent_id)
        if run.info.status in ("RUNNING", "SCHEDULED") and "benchmark.fold" in run.data.tags and is_alive(run)
    }
