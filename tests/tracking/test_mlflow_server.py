"""The team setup (docs/scaling.md): `benchmark run` and `benchmark compare` against a real ``mlflow server``
on PostgreSQL that proxies the artifacts (`--tracking-uri http://…`). Runs, artifacts, comparison and resume
work through the server, and the metrics equal those of the same run on a local SQLite store."""

from __future__ import annotations

import json
import math
import os
import uuid
from types import SimpleNamespace

import pytest
from mlflow.tracking import MlflowClient

from benchmark.cli.main import main

pytestmark = pytest.mark.usefixtures("keep_tracking_uri")

_WALL_CLOCK = ("seconds", "per_s", "memory")  # timings and memory differ between any two runs


def _run(tmp, uri: str, experiment: str) -> int:
    return main(
        ["run", "--dataset", "digits-panda", "--models", "abmil,meanpool", "--folds", "2", "--epochs", "1"]
        + ["--threads", "1", "--no-compare", "--tracking-uri", uri, "--experiment", experiment]
        + ["--cache-dir", str(tmp / "cache"), "--splits-dir", str(tmp / "splits")]
    )


def _by_role(uri: str, experiment: str) -> dict[str, list]:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    out: dict[str, list] = {}
    for run in client.search_runs([exp.experiment_id]):
        out.setdefault(run.data.tags.get("benchmark.role"), []).append(run)
    return out


def _fold_metrics(runs) -> dict[tuple[str, int], dict[str, float]]:
    return {
        (r.data.tags["benchmark.method"], int(r.data.tags["benchmark.fold"])): {
            k: v for k, v in r.data.metrics.items() if not any(w in k for w in _WALL_CLOCK)
        }
        for r in runs
    }


@pytest.fixture(scope="module")
def served(mlflow_server, tmp_path_factory):
    """Two methods × two folds logged through the server, in an experiment named for this test module."""
    tmp = tmp_path_factory.mktemp("served")
    experiment = f"digits-panda-{uuid.uuid4().hex[:12]}"
    assert _run(tmp, mlflow_server, experiment) == 0
    return SimpleNamespace(url=mlflow_server, experiment=experiment, tmp=tmp)


def test_parents_and_folds_finish_with_proxied_artifacts(served):
    runs = _by_role(served.url, served.experiment)
    parents, folds = runs["parent"], runs["fold"]
    assert sorted(r.data.tags["benchmark.method"] for r in parents) == ["abmil", "meanpool"]
    assert all(r.info.status == "FINISHED" for r in parents + folds)
    for parent in parents:
        children = [r for r in folds if r.data.tags["mlflow.parentRunId"] == parent.info.run_id]
        assert sorted(int(r.data.tags["benchmark.fold"]) for r in children) == [0, 1]
    # --serve-artifacts: the client uploads through the server, which writes to --artifacts-destination
    assert all(r.info.artifact_uri.startswith("mlflow-artifacts:/") for r in parents + folds)
    assert len(runs["overview"]) == 1


def test_artifacts_are_readable_through_the_server(served, tmp_path):
    client = MlflowClient(tracking_uri=served.url)
    runs = _by_role(served.url, served.experiment)
    png = b"\x89PNG\r\n\x1a\n"
    for fold in runs["fold"]:
        run_id = fold.info.run_id
        assert {"predictions.csv", "checkpoint.pt", "figures"} <= {
            a.path for a in client.list_artifacts(run_id)
        }
        figures = [a.path for a in client.list_artifacts(run_id, "figures") if a.path.endswith(".png")]
        assert figures
        local = tmp_path / run_id
        predictions = client.download_artifacts(run_id, "predictions.csv", str(local))
        assert open(predictions).readline().strip()  # a header at least
        assert open(client.download_artifacts(run_id, figures[0], str(local)), "rb").read(8) == png
        checkpoint = client.download_artifacts(run_id, "checkpoint.pt", str(local))
        assert os.path.getsize(checkpoint) > 0
    for parent in runs["parent"]:
        table = client.download_artifacts(parent.info.run_id, "per_class_pooled.json", str(tmp_path / "p"))
        assert {"columns", "data"} <= set(json.loads(open(table).read()))
    overview = runs["overview"][0].info.run_id
    figure = client.download_artifacts(overview, "figures/auc_overview.png", str(tmp_path / "o"))
    assert open(figure, "rb").read(8) == png


def test_compare_reads_the_server(served, capsys):
    capsys.readouterr()
    args = ["--tracking-uri", served.url, "--experiment", served.experiment, "--format", "json"]
    assert main(["compare", *args, "--bootstrap", "0"]) == 0
    methods = json.loads(capsys.readouterr().out)["methods"]
    assert set(methods) == {"abmil", "meanpool"}
    assert all(m["n_folds"] == 2 for m in methods.values())


def test_metrics_equal_those_of_a_local_sqlite_store(served):
    assert _run(served.tmp, f"sqlite:///{served.tmp}/local.db", served.experiment) == 0
    local = _fold_metrics(_by_role(f"sqlite:///{served.tmp}/local.db", served.experiment)["fold"])
    remote = _fold_metrics(_by_role(served.url, served.experiment)["fold"])
    assert sorted(remote) == sorted(local) == [("abmil", 0), ("abmil", 1), ("meanpool", 0), ("meanpool", 1)]
    for key, metrics in remote.items():
        assert "test.fine.auc" in metrics and sorted(metrics) == sorted(local[key]), key
        differ = {
            k: (v, local[key][k])
            for k, v in metrics.items()
            if v != local[key][k] and not (math.isnan(v) and math.isnan(local[key][k]))
        }
        assert not differ, (key, differ)


def test_rerun_through_the_server_skips_finished_folds(served):
    before = {r.info.run_id for r in _by_role(served.url, served.experiment)["fold"]}
    assert _run(served.tmp, served.url, served.experiment) == 0
    after = _by_role(served.url, served.experiment)
    assert {r.info.run_id for r in after["fold"]} == before and len(before) == 4
    assert len(after["parent"]) == 2
