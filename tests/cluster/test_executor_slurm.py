"""``benchmark run --executor slurm`` on a real Slurm cluster, recording into a real MLflow server on
PostgreSQL: the same runs as inline, and cells whose job is cancelled (``scancel``) or whose worker is
SIGKILLed are retried without leaving duplicate or missing folds."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from benchmark.cli.main import main

pytestmark = pytest.mark.timeout(600)
CLI = Path(sys.executable).with_name("benchmark")
CLOCK = ("seconds", "per_s", "memory")


def _args(tmp: Path, uri: str, experiment: str, *extra: str) -> list[str]:
    return [
        "run",
        "--dataset",
        "digits-panda",
        "--cache-dir",
        str(tmp / "cache"),
        "--splits-dir",
        str(tmp / "splits"),
        "--tracking-uri",
        uri,
        "--experiment",
        experiment,
        "--no-compare",
        *extra,
    ]


def _fold_metrics(uri: str, experiment: str) -> dict:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return {
        (r.data.tags["benchmark.method"], r.data.tags["benchmark.fold"]): {
            k: "nan" if math.isnan(v) else v
            for k, v in r.data.metrics.items()
            if not any(c in k for c in CLOCK)
        }
        for r in client.search_runs([exp.experiment_id], "tags.`benchmark.role` = 'fold'")
        if r.info.status == "FINISHED"
    }


def _runs(uri: str, experiment: str, role: str, deleted: bool = False):
    from mlflow.entities import ViewType

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:  # the planner has not created it yet
        return []
    view = ViewType.DELETED_ONLY if deleted else ViewType.ACTIVE_ONLY
    return client.search_runs([exp.experiment_id], f"tags.`benchmark.role` = '{role}'", run_view_type=view)


def test_slurm_array_gives_the_inline_runs(tmp_path, slurm_partition, tracking_server):
    experiment = f"slurm-{uuid.uuid4().hex[:8]}"
    models = ["--models", "abmil,meanpool", "--folds", "3", "--epochs", "2"]
    slurm = ["--executor", "slurm", "--wait", "--slurm-partition", slurm_partition]
    assert (
        main(
            _args(
                tmp_path,
                tracking_server,
                experiment,
                *models,
                *slurm,
                "--slurm-folder",
                str(tmp_path / "logs"),
            )
        )
        == 0
    )
    parents = _runs(tracking_server, experiment, "parent")
    folds = _runs(tracking_server, experiment, "fold")
    assert sorted(p.data.tags["benchmark.method"] for p in parents) == ["abmil", "meanpool"]
    assert all(p.info.status == "FINISHED" for p in parents)
    assert len(folds) == 6 and all(f.info.status == "FINISHED" for f in folds)
    assert all(f.data.tags.get("benchmark.worker.slurm_job") for f in folds)  # each cell ran in a Slurm job
    assert {f.data.params["compute.threads"] for f in folds} == {"1"}  # --slurm-cpus-per-task 1
    local = f"sqlite:///{tmp_path}/inline.db"
    assert main(_args(tmp_path, local, experiment, *models, "--threads", "1")) == 0
    assert _fold_metrics(tracking_server, experiment) == _fold_metrics(local, experiment)


def _wait_for_running_child(uri: str, experiment: str, fold: str, deadline: float):
    while time.monotonic() < deadline:
        for run in _runs(uri, experiment, "fold"):
            tags = run.data.tags
            if (
                run.info.status == "RUNNING"
                and tags.get("benchmark.fold") == fold
                and tags.get("benchmark.worker.pid")
            ):
                return run
        time.sleep(0.5)
    pytest.fail(f"no RUNNING child of fold {fold} appeared")


def test_cancelled_and_killed_cells_are_retried_without_duplicates(
    tmp_path, slurm_partition, tracking_server
):
    experiment = f"slurm-kill-{uuid.uuid4().hex[:8]}"
    args = _args(
        tmp_path, tracking_server, experiment,
        "--models", "abmil", "--folds", "2", "--epochs", "400", "--set", "train.patience=1000",
        "--executor", "slurm", "--wait", "--retries", "1", "--slurm-partition", slurm_partition,
        "--slurm-folder", str(tmp_path / "logs"),
    )  # fmt: skip
    planner = subprocess.Popen(
        [str(CLI), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 240
        first = _wait_for_running_child(tracking_server, experiment, "0", deadline)
        subprocess.run(["scancel", first.data.tags["benchmark.worker.slurm_job"]], check=True, timeout=30)
        second = _wait_for_running_child(tracking_server, experiment, "1", deadline)
        os.kill(int(second.data.tags["benchmark.worker.pid"]), signal.SIGKILL)  # the worker dies mid-cell
        out, _ = planner.communicate(timeout=420)
    finally:
        if planner.poll() is None:
            os.killpg(planner.pid, signal.SIGKILL)
    assert planner.returncode == 0, out[-3000:]
    assert out.count("resubmitted as") == 2, out[-3000:]
    (parent,) = _runs(tracking_server, experiment, "parent")
    folds = _runs(tracking_server, experiment, "fold")
    assert parent.info.status == "FINISHED" and parent.data.tags["benchmark.folds_finished"] == "2"
    assert sorted(f.data.tags["benchmark.fold"] for f in folds) == ["0", "1"]  # one active child per fold
    assert all(f.info.status == "FINISHED" for f in folds)
    dead = _runs(tracking_server, experiment, "fold", deleted=True)  # retired into MLflow's trash
    assert {d.info.run_id for d in dead} == {first.info.run_id, second.info.run_id}
    assert all(d.info.status == "KILLED" for d in dead)


def test_tune_workers_as_a_slurm_array_fill_one_study(tmp_path, slurm_partition, tracking_server):
    import optuna

    storage = os.environ.get("HMIL_BENCH_TEST_POSTGRES")
    if not storage:
        pytest.skip("HMIL_BENCH_TEST_POSTGRES not set")  # the tracking_server fixture already failed under CI
    name = f"slurm-tune-{uuid.uuid4().hex[:8]}"
    args = [
        "tune", "--dataset", "panda-sim", "--scale", "0.2", "--folds", "2", "--epochs", "1",
        "--cache-dir", str(tmp_path / "cache"), "--splits-dir", str(tmp_path / "splits"),
        "--tracking-uri", tracking_server, "--storage", storage, "--study", name,
        "--model", "meanpool", "--trials", "4", "--workers", "2", "--pruner", "none",
        "--executor", "slurm", "--slurm-partition", slurm_partition, "--slurm-folder", str(tmp_path / "logs"),
    ]  # fmt: skip
    assert main(args) == 0
    trials = optuna.load_study(study_name=name, storage=storage).trials
    assert len(trials) == 4 and all(t.state.name == "COMPLETE" for t in trials)
    client = MlflowClient(tracking_server)
    runs = client.search_runs([client.get_experiment_by_name(f"tune-{name}").experiment_id])
    assert sorted(int(r.data.tags["optuna.trial"]) for r in runs) == list(range(4))
    assert len({r.data.tags["optuna.worker"] for r in runs}) == 2  # both array tasks ran trials
    logs = list((tmp_path / "logs").glob("*_log.out"))
    assert len(logs) == 2  # one SLURM task per worker


def _planner(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [str(CLI), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def _long_cells(tmp_path: Path, uri: str, experiment: str, *extra: str) -> list[str]:
    """One model, 2 folds of ~20 s each (400 epochs, no early stop), one cell at a time."""
    return _args(
        tmp_path, uri, experiment,
        "--models", "abmil", "--folds", "2", "--epochs", "400", "--set", "train.patience=1000",
        "--executor", "slurm", "--slurm-array-parallelism", "1", "--slurm-folder", str(tmp_path / "logs"), *extra,
    )  # fmt: skip


def test_a_user_error_in_a_cell_is_reported_and_not_retried(tmp_path, slurm_partition, tracking_server):
    experiment = f"slurm-usererr-{uuid.uuid4().hex[:8]}"
    args = _long_cells(tmp_path, tracking_server, experiment, "--wait", "--slurm-partition", slurm_partition)
    planner = _planner(args)
    try:
        _wait_for_running_child(tracking_server, experiment, "0", time.monotonic() + 240)
        (split,) = (tmp_path / "splits").rglob("*.csv")
        split.write_text(split.read_text().replace("train", "val", 1))  # the fold-1 task reads a broken file
        out, _ = planner.communicate(timeout=300)
    finally:
        if planner.poll() is None:
            os.killpg(planner.pid, signal.SIGKILL)
    assert planner.returncode == 2, out[-3000:]
    assert "error: 1 cell(s) failed: abmil fold 1: split file" in out and "resubmitted" not in out, out[
        -3000:
    ]
    (parent,) = _runs(tracking_server, experiment, "parent")
    assert parent.info.status == "FAILED"  # as inline: a parent whose fold failed is FAILED, never FINISHED
    assert [f.data.tags["benchmark.fold"] for f in _runs(tracking_server, experiment, "fold")] == ["0"]


def test_ctrl_c_cancels_the_array_and_marks_the_cells_killed(tmp_path, slurm_partition, tracking_server):
    experiment = f"slurm-ctrlc-{uuid.uuid4().hex[:8]}"
    args = _long_cells(tmp_path, tracking_server, experiment, "--wait", "--slurm-partition", slurm_partition)
    planner = _planner(args)
    try:
        child = _wait_for_running_child(tracking_server, experiment, "0", time.monotonic() + 240)
        planner.send_signal(signal.SIGINT)  # Ctrl-C in the submitting terminal
        out, _ = planner.communicate(timeout=120)
    finally:
        if planner.poll() is None:
            os.killpg(planner.pid, signal.SIGKILL)
    assert planner.returncode != 0, out[-3000:]
    array = child.data.tags["benchmark.worker.slurm_job"].split("_")[0]
    deadline = time.monotonic() + 60
    while subprocess.run(["squeue", "-h", "-j", array], capture_output=True, text=True).stdout.strip():
        assert time.monotonic() < deadline, "the array is still queued or running after Ctrl-C"
        time.sleep(1)
    (parent,) = _runs(tracking_server, experiment, "parent")
    assert parent.info.status == "KILLED"
    assert {f.info.status for f in _runs(tracking_server, experiment, "fold")} == {"KILLED"}


def test_without_wait_the_last_task_closes_the_parent_once(
    tmp_path, slurm_partition, tracking_server, capsys
):
    experiment = f"slurm-nowait-{uuid.uuid4().hex[:8]}"
    models = ["--models", "abmil,meanpool", "--folds", "2", "--epochs", "2"]
    slurm = [
        "--executor",
        "slurm",
        "--slurm-partition",
        slurm_partition,
        "--slurm-folder",
        str(tmp_path / "logs"),
    ]
    assert main(_args(tmp_path, tracking_server, experiment, *models, *slurm)) == 0  # returns once submitted
    deadline = time.monotonic() + 240
    while not all(p.info.status == "FINISHED" for p in _runs(tracking_server, experiment, "parent")):
        assert time.monotonic() < deadline, "the parents were not closed by the array's tasks"
        time.sleep(2)
    client = MlflowClient(tracking_server)
    for parent in _runs(tracking_server, experiment, "parent"):
        history = client.get_metric_history(parent.info.run_id, "test.fine.auc.mean")
        assert len(history) == 1  # closed exactly once
        assert parent.data.tags["benchmark.folds_finished"] == "2"
    capsys.readouterr()
    status_args = [
        "status",
        "--experiment",
        experiment,
        "--tracking-uri",
        tracking_server,
        "--format",
        "json",
    ]
    assert main(status_args) == 0
    status = json.loads(capsys.readouterr().out)
    assert sorted(s["method"] for s in status) == ["abmil", "meanpool"]
    assert all(s["folds"]["finished"] == [0, 1] and s["folds"]["pending"] == [] for s in status)


def test_a_requeued_task_redoes_its_cell_without_a_duplicate(tmp_path, slurm_partition, tracking_server):
    """Pre-emption as SLURM does it (``scontrol requeue``), without --wait: the task starts its cell again under
    the same job id, the earlier attempt's RUNNING child becomes KILLED and is retired."""
    experiment = f"slurm-requeue-{uuid.uuid4().hex[:8]}"
    assert main(_long_cells(tmp_path, tracking_server, experiment, "--slurm-partition", slurm_partition)) == 0
    child = _wait_for_running_child(tracking_server, experiment, "0", time.monotonic() + 240)
    job = child.data.tags["benchmark.worker.slurm_job"]
    subprocess.run(["scontrol", "requeue", job], check=True, timeout=30, capture_output=True)
    deadline = time.monotonic() + 400
    while not all(p.info.status == "FINISHED" for p in _runs(tracking_server, experiment, "parent")):
        assert time.monotonic() < deadline, "the parent was not closed after the requeue"
        time.sleep(2)
    folds = _runs(tracking_server, experiment, "fold")
    assert sorted(f.data.tags["benchmark.fold"] for f in folds) == ["0", "1"]
    assert all(f.info.status == "FINISHED" for f in folds)
    (dead,) = _runs(tracking_server, experiment, "fold", deleted=True)
    assert dead.info.run_id == child.info.run_id and dead.info.status == "KILLED"
    assert dead.data.tags["benchmark.note"] == f"marked KILLED: job {job} was requeued"
