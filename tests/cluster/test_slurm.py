"""Real submitit jobs on a real Slurm cluster: one function, a job array of 2, and a cancelled job.

Needs HMIL_BENCH_TEST_SLURM (``.ci/run`` starts a one-node cluster via ``.ci/slurm.sh``, which also exports
SLURM_CONF and HMIL_BENCH_SLURM_PARTITION). Locally the tests skip without it; under ``CI=true`` they fail
instead, so CI cannot skip them silently. The jobs are in ``tests/cluster/jobs.py``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster import jobs

try:
    import submitit
    from submitit.core.utils import UncompletedJobError
except ImportError:  # an optional dependency: reported by the fixture below (skip locally, fail in CI)
    submitit = None

ROOT = Path(__file__).resolve().parents[2]
RESULT_TIMEOUT_S = 120

pytestmark = pytest.mark.timeout(3 * RESULT_TIMEOUT_S)


@pytest.fixture
def executor(tmp_path, slurm_partition):
    """A Slurm AutoExecutor writing into ``tmp_path/submitit``; jobs start in the repository root."""
    ex = submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="slurm")
    ex.update_parameters(
        slurm_partition=slurm_partition,
        timeout_min=5,
        cpus_per_task=1,
        slurm_additional_parameters={"chdir": str(ROOT)},
    )
    return ex


def _wait(job, timeout: float = RESULT_TIMEOUT_S) -> None:
    """Poll ``job.done()`` (result file, then sacct) until it is done; cancel it and fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not job.done():
        if time.monotonic() > deadline:
            job.cancel(check=False)
            pytest.fail(f"Slurm job {job.job_id} not done after {timeout:.0f} s (state {job.state})")
        time.sleep(0.5)


def _sacct_state(job, prefix: str, timeout: float = 30) -> str:
    """The job's state as sacct reports it, polled until it starts with ``prefix``: it lags the result file
    (the job is still RUNNING/COMPLETING in sacct when its result pickle appears)."""
    deadline = time.monotonic() + timeout
    while not (state := job.get_info(mode="force").get("State", "UNKNOWN")).startswith(prefix):
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return state


def test_one_function_runs_in_the_venv_under_slurm(executor, slurm_partition):
    job = executor.submit(jobs.describe, 7)
    _wait(job)
    info = job.result()
    assert info["value"] == 49
    assert info["python"] == sys.executable
    assert Path(info["benchmark"]).is_relative_to(ROOT)
    assert info["cli_help"].startswith("usage: benchmark")
    assert info["cwd"] == str(ROOT)
    assert info["env"]["SLURM_JOB_ID"] == job.job_id
    assert info["env"]["SLURM_JOB_PARTITION"] == slurm_partition
    assert info["env"]["SUBMITIT_EXECUTOR"] == "slurm"
    assert "job output: square of 7" in job.stdout()
    assert "job error stream: square of 7" in job.stderr()
    assert _sacct_state(job, "COMPLETED") == "COMPLETED"


def test_job_array_of_two(executor):
    array = executor.map_array(jobs.describe, [2, 3])
    assert [j.job_id for j in array] == [f"{array[0].job_id.split('_')[0]}_{i}" for i in range(2)]
    for job in array:
        _wait(job)
    infos = [job.result() for job in array]
    assert [i["value"] for i in infos] == [4, 9]
    assert [i["env"]["SLURM_ARRAY_TASK_ID"] for i in infos] == ["0", "1"]
    assert {i["env"]["SLURM_ARRAY_JOB_ID"] for i in infos} == {array[0].job_id.split("_")[0]}


def test_cancelled_job_is_reported_cancelled(executor, tmp_path):
    marker = tmp_path / "started"
    job = executor.submit(jobs.touch_then_sleep, str(marker), 600)
    deadline = time.monotonic() + RESULT_TIMEOUT_S
    while not marker.exists():
        assert time.monotonic() < deadline, f"job {job.job_id} never started (state {job.state})"
        time.sleep(0.2)
    job.cancel(check=True)  # `scancel <job id>`
    _wait(job, timeout=60)
    assert job.state.startswith("CANCELLED")  # sacct says "CANCELLED by <uid>"; job.done() polled it
    with pytest.raises(UncompletedJobError, match="has not produced any output"):
        job.result()  # no result file: submitit waits 15 s for one, then raises
    sacct = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-o", "State", "-j", job.job_id],
        capture_output=True,
        text=True,
        check=True,
    )
    assert sacct.stdout.startswith("CANCELLED")
