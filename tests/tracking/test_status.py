"""``benchmark status``: each fold's state is its best child's (finished > running > failed > killed), folds
without a child are pending; read from MLflow alone."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from benchmark.cli.main import main
from benchmark.core.errors import BenchmarkError
from benchmark.tracking.status import experiment_status


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path}/s.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("demo")
    parent = client.create_run(
        exp,
        tags={"benchmark.role": "parent", "benchmark.method": "abmil", "benchmark.n_folds": "5"},
        run_name="abmil-p",
    ).info.run_id

    def child(fold: int, status: str) -> None:
        tags = {"benchmark.role": "fold", "benchmark.fold": str(fold), "mlflow.parentRunId": parent}
        run_id = client.create_run(exp, tags=tags).info.run_id
        if status != "RUNNING":
            client.set_terminated(run_id, status)

    child(0, "FINISHED")
    child(1, "FAILED")
    child(1, "FINISHED")  # retried: the fold is finished
    child(2, "RUNNING")
    child(3, "KILLED")
    return uri, client


def test_each_fold_takes_its_best_childs_state(store):
    uri, client = store
    (status,) = experiment_status(client, "demo")
    assert status.method == "abmil" and status.n_folds == 5 and status.parent_status == "RUNNING"
    assert status.folds == {"finished": [0, 1], "running": [2], "failed": [], "killed": [3], "pending": [4]}


def test_unknown_experiment_names_the_existing_ones(store):
    _, client = store
    with pytest.raises(BenchmarkError, match="'nope' not found; existing: Default, demo"):
        experiment_status(client, "nope")


def test_the_cli_table_lists_the_fold_indices(store, capsys):
    uri, _ = store
    assert main(["status", "--experiment", "demo", "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    assert "abmil" in out and "2: 0,1" in out and "1: 4" in out and "1: 3" in out
