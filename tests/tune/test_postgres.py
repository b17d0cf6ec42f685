"""A real PostgreSQL study filled by several workers, and a worker killed mid-trial (heartbeat + retry).

Needs HMIL_BENCH_TEST_POSTGRES (``.ci/run`` starts a server on 127.0.0.1 via ``.ci/postgres.sh``). Locally
the tests skip without it; under ``CI=true`` they fail instead, so CI cannot skip them silently.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import optuna
import pytest
from mlflow.tracking import MlflowClient

from benchmark.cli.main import main
from benchmark.tune.storage import open_storage, retried_trial_number
from tests.tune.conftest import tune_args


def _load(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(url, heartbeat_interval=None))


def test_two_workers_fill_one_study_with_exactly_six_trials(tmp_path, postgres_url):
    name = f"two-workers-{uuid.uuid4().hex[:8]}"
    args = tune_args(
        tmp_path,
        "--model",
        "meanpool",
        "--trials",
        "6",
        "--workers",
        "2",
        "--study",
        name,
        "--pruner",
        "none",
        storage=postgres_url,
    )
    assert main(args) == 0
    trials = _load(postgres_url, name).trials
    assert len(trials) == 6 and all(t.state.name == "COMPLETE" for t in trials)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name(f"tune-{name}")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(int(r.data.tags["optuna.trial"]) for r in runs) == list(range(6))
    assert len({r.data.tags["optuna.worker"] for r in runs}) == 2  # both processes ran trials


def test_killed_worker_trial_is_failed_and_retried(tmp_path, postgres_url):
    name = f"killed-{uuid.uuid4().hex[:8]}"
    # Long enough that the kill lands mid-trial: 40 epochs without early stopping.
    slow = (
        "--model",
        "abmil",
        "--study",
        name,
        "--pruner",
        "none",
        "--heartbeat",
        "1",
        "--grace",
        "3",
        "--patience",
        "0",
    )
    args = tune_args(tmp_path, *slow, "--trials", "1", storage=postgres_url)
    args[args.index("--epochs") + 1] = "40"
    worker = subprocess.Popen(
        [sys.executable, "-m", "benchmark.cli.main", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            time.sleep(0.5)
            assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
            try:
                states = [t.state.name for t in _load(postgres_url, name).trials]
            except KeyError:  # study not created yet
                continue
            if "RUNNING" in states:
                time.sleep(1.5)  # a heartbeat or two, then die without cleanup
                os.kill(worker.pid, signal.SIGKILL)
                break
        else:
            pytest.fail("the worker never started a trial")
    finally:
        worker.wait()
    assert [t.state.name for t in _load(postgres_url, name).trials] == ["RUNNING"]  # SIGKILL left it running
    time.sleep(4)  # past the grace period
    # The next worker (same command) finds the stale trial, fails it and runs its retry first.
    assert main(args) == 0
    trials = _load(postgres_url, name).trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    assert retried_trial_number(trials[1]) == 0 and trials[1].params == trials[0].params
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name(f"tune-{name}")
    runs = {r.data.tags["optuna.trial"]: r for r in client.search_runs([exp.experiment_id])}
    assert runs["0"].info.status == "FAILED" and runs["0"].data.tags["optuna.state"] == "FAIL"
    assert runs["1"].data.tags["optuna.retry_of"] == "0" and runs["1"].data.tags["optuna.state"] == "COMPLETE"
