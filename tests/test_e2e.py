"""End-to-end: a real (tiny) `benchmark run` into a temporary MLflow store, then `benchmark compare`."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from benchmark.cli.main import main
from benchmark.run.threads import cpu_budget


def _args(tmp, *extra):
    return [
        "--dataset",
        "panda-sim",
        "--scale",
        "0.2",
        "--cache-dir",
        str(tmp / "cache"),
        "--splits-dir",
        str(tmp / "splits"),
        "--tracking-uri",
        f"sqlite:///{tmp}/x.db",
        *extra,
    ]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    code = main(["run", *_args(tmp, "--models", "abmil", "--folds", "3", "--epochs", "2", "--no-compare")])
    assert code == 0
    return tmp


def _runs(tmp, experiment="panda-sim"):
    client = MlflowClient(f"sqlite:///{tmp}/x.db")
    exp = client.get_experiment_by_name(experiment)
    return client, client.search_runs([exp.experiment_id])


def test_mlflow_holds_one_parent_and_three_finished_children(finished_run):
    client, runs = _runs(finished_run)
    parents = [r for r in runs if r.data.tags.get("benchmark.role") == "parent"]
    children = [r for r in runs if r.data.tags.get("benchmark.role") == "fold"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(int(r.data.tags["benchmark.fold"]) for r in children) == [0, 1, 2]
    assert all(r.info.status == "FINISHED" for r in children)
    assert all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in children)
    m = children[0].data.metrics
    for cls in ("ISUP_0", "ISUP_5"):
        for metric in ("auc", "specificity", "accuracy", "sensitivity"):
            assert f"test.fine.{metric}.{cls}" in m
    assert 0.0 <= m["test.fine.auc"] <= 1.0 and "test.coarse.auc.benign" in m
    tags = parents[0].data.tags
    for key in ("benchmark.split_digest", "benchmark.config_hash", "benchmark.version", "benchmark.dataset"):
        assert tags[key]
    pm = parents[0].data.metrics
    assert pm["test.fine.accuracy.mean"] == pytest.approx(
        sum(r.data.metrics["test.fine.accuracy"] for r in children) / 3
    )
    assert "compute.train_slides_per_s.mean" in pm and "compute.n_params.mean" in pm
    # The UI opens on runs (model-training experiment) and the parent describes itself.
    exp = client.get_experiment(parents[0].info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    note = tags["mlflow.note.content"]
    assert "`panda-sim`: 3/3 folds finished" in note and "| AUC (macro OvR) |" in note
    assert note.startswith("**abmil** test AUC (mean ± std over folds): fine ")
    assert f"{pm['test.fine.auc.mean']:.3f} ± {pm['test.fine.auc.std']:.3f}" in note
    assert "Command: `benchmark run --dataset panda-sim" in note
    # The thread count is recorded (the e2e run gives no --threads: the CPUs this process may use).
    assert {r.data.params["compute.threads"] for r in children} == {str(cpu_budget())}
    artifacts = {a.path for a in client.list_artifacts(children[0].info.run_id)}
    assert {"predictions.csv", "per_class.json", "checkpoint.pt", "figures"} <= artifacts
    inputs = client.get_run(children[0].info.run_id).inputs.dataset_inputs
    assert inputs and inputs[0].dataset.name.startswith("kfold-k3")


def test_parent_holds_pooled_out_of_fold_figures_and_table(finished_run, tmp_path):
    """The parent's per_class_pooled.json is the metrics of the concatenated fold predictions, computed here
    independently with scikit-learn from the children's predictions.csv."""
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    client, runs = _runs(finished_run)
    parent = next(r for r in runs if r.data.tags.get("benchmark.role") == "parent")
    children = [r for r in runs if r.data.tags.get("benchmark.role") == "fold"]
    names = {a.path for a in client.list_artifacts(parent.info.run_id, "figures")}
    for level in ("fine", "coarse", "coarse_head"):  # abmil has no coarse head: no coarse_head figures
        expected = {f"figures/pooled_{kind}_{level}.png" for kind in ("confusion", "roc")}
        assert (expected <= names) == (level != "coarse_head"), (level, names)
    frames = [
        pd.read_csv(
            client.download_artifacts(r.info.run_id, "predictions.csv", str(tmp_path / r.info.run_id))
        )
        for r in children
    ]
    pooled = pd.concat(frames, ignore_index=True)
    table_path = client.download_artifacts(parent.info.run_id, "per_class_pooled.json", str(tmp_path))
    table = json.loads(open(table_path).read())
    rows = pd.DataFrame(table["data"], columns=table["columns"])
    fine = rows[rows["level"] == "fine"].set_index("class")
    assert fine["support"].sum() == len(pooled) == sum(int(r.data.params["n_test"]) for r in children)
    for cls in ("ISUP 0", "ISUP 5"):
        auc = roc_auc_score(pooled["fine_true"] == cls, pooled[f"p_fine.{cls}"])
        assert fine.loc[cls, "auc"] == pytest.approx(auc, abs=5e-5)  # the table is rounded to 4 decimals
        accuracy = ((pooled["fine_true"] == cls) == (pooled["fine_pred"] == cls)).mean()
        assert fine.loc[cls, "accuracy"] == pytest.approx(accuracy, abs=5e-5)


def test_experiment_overview_lists_every_method_with_its_auc(finished_run):
    """After a run, the experiment's description (and the `overview` run) is the AUC table of its methods,
    with the parent's mean ± std and a bootstrap CI around the pooled AUC; the figure is logged."""
    client, runs = _runs(finished_run)
    parent = next(r for r in runs if r.data.tags.get("benchmark.role") == "parent")
    overview = [r for r in runs if r.data.tags.get("benchmark.role") == "overview"]
    assert len(overview) == 1 and overview[0].info.status == "FINISHED"
    assert "figures/auc_overview.png" in {
        a.path for a in client.list_artifacts(overview[0].info.run_id, "figures")
    }
    note = client.get_experiment(parent.info.experiment_id).tags["mlflow.note.content"]
    pm = parent.data.metrics
    row = next(line for line in note.splitlines() if line.startswith("| abmil |"))
    fine, coarse = row.split("|")[2:4]
    assert fine.strip().startswith(f"{pm['test.fine.auc.mean']:.3f} ± {pm['test.fine.auc.std']:.3f} (")
    assert coarse.strip().startswith(f"{pm['test.coarse.auc.mean']:.3f} ± {pm['test.coarse.auc.std']:.3f} (")
    low, high = (float(v) for v in fine.split("[")[1].split("]")[0].split(","))
    pooled = float(fine.split("(")[1].split(" [")[0])
    assert low <= pooled <= high and 0.0 <= low < high <= 1.0


def test_per_class_tables_name_classes_as_the_dataset_does(finished_run):
    """Metric keys say ISUP_0 (MLflow-safe); the per-class comparison says ISUP 0, as the figures do."""
    from benchmark.compare import compare

    cmp = compare(f"sqlite:///{finished_run}/x.db", "panda-sim", per_class=True)
    assert set(cmp.per_class["class"]) == {f"ISUP {k}" for k in range(6)}
    coarse = compare(f"sqlite:///{finished_run}/x.db", "panda-sim", level="coarse", per_class=True)
    assert "benign" in set(coarse.per_class["class"]) and "ISUP 0" not in set(coarse.per_class["class"])


def test_compare_json_has_fine_and_coarse_accuracy_specificity_auc(finished_run, capsys):
    out = {}
    for level in ("fine", "coarse"):
        capsys.readouterr()
        assert (
            main(
                [
                    "compare",
                    "--dataset",
                    "panda-sim",
                    "--tracking-uri",
                    f"sqlite:///{finished_run}/x.db",
                    "--format",
                    "json",
                    "--level",
                    level,
                ]
            )
            == 0
        )
        out[level] = json.loads(capsys.readouterr().out)
    for level in ("fine", "coarse"):
        abmil = out[level]["methods"]["abmil"]
        assert abmil["n_folds"] == 3
        for metric in ("accuracy", "specificity", "auc"):
            stats = abmil["metrics"][metric]
            assert len(stats["values"]) == 3 and stats["mean"] is not None and stats["std"] is not None


def test_compare_shows_the_optimiser_steps_each_fold_spent(finished_run, capsys):
    client, runs = _runs(finished_run)
    children = [r for r in runs if r.data.tags.get("benchmark.role") == "fold"]
    for r in children:  # 2 epochs (no early stop possible), batches of 16 training bags
        n_train = int(r.data.params["n_train"])
        assert r.data.metrics["compute.optimizer_steps"] == 2 * -(-n_train // 16)
    capsys.readouterr()
    uri = f"sqlite:///{finished_run}/x.db"
    assert main(["compare", "--dataset", "panda-sim", "--tracking-uri", uri, "--format", "json"]) == 0
    steps = json.loads(capsys.readouterr().out)["methods"]["abmil"]["optimizer_steps"]
    assert steps == pytest.approx(sum(r.data.metrics["compute.optimizer_steps"] for r in children) / 3)
    assert main(["compare", "--dataset", "panda-sim", "--tracking-uri", uri, "--format", "md"]) == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| method"))
    assert "| steps |" in header


def test_rerun_skips_finished_folds(finished_run):
    assert (
        main(
            [
                "run",
                *_args(finished_run, "--models", "abmil", "--folds", "3", "--epochs", "2", "--no-compare"),
            ]
        )
        == 0
    )
    _, runs = _runs(finished_run)
    assert len([r for r in runs if r.data.tags.get("benchmark.role") == "fold"]) == 3


def test_the_logged_config_file_replays_the_run(finished_run, tmp_path, monkeypatch, capsys):
    """`benchmark run --config <the parent's config.json>` resolves to the same config hash: every fold is
    skipped (from another working directory, too), and nothing new is written."""
    client, runs = _runs(finished_run)
    parent = next(r for r in runs if r.data.tags.get("benchmark.role") == "parent")
    config = client.download_artifacts(parent.info.run_id, "config.json", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["run", "--config", config, "--no-compare"]) == 0
    assert "abmil: skipped finished fold(s) [0, 1, 2]" in capsys.readouterr().out
    _, after = _runs(finished_run)
    assert len(after) == len(runs) and all(r.info.status == "FINISHED" for r in after)


def test_sigkill_during_fold_2_then_resume(tmp_path):
    """Kill the process (SIGKILL) while fold 2 of 3 trains; the rerun redoes only fold 2."""
    cmd = [
        sys.executable,
        "-m",
        "benchmark.cli.main",
        "run",
        *_args(
            tmp_path,
            "--models",
            "abmil",
            "--folds",
            "3",
            "--epochs",
            "8",
            "--no-compare",
            "--set",
            "train.patience=0",
        ),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    # Poll the store with plain sqlite3 (read-only): an MlflowClient here would race the child's schema migration.
    query = (
        "SELECT r.status FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
        "WHERE t.key = 'benchmark.fold' AND t.value = '2'"
    )
    try:
        while time.time() < deadline:
            time.sleep(0.3)
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            try:
                with sqlite3.connect(f"file:{tmp_path / 'x.db'}?mode=ro", uri=True, timeout=1) as con:
                    statuses = [row[0] for row in con.execute(query)]
            except sqlite3.Error:  # not created or still migrating
                continue
            if "RUNNING" in statuses:
                os.kill(proc.pid, signal.SIGKILL)
                break
        else:
            pytest.fail("fold 2 never started")
    finally:
        proc.wait()
    assert (
        main(
            [
                "run",
                *_args(
                    tmp_path,
                    "--models",
                    "abmil",
                    "--folds",
                    "3",
                    "--epochs",
                    "8",
                    "--no-compare",
                    "--set",
                    "train.patience=0",
                ),
            ]
        )
        == 0
    )
    client, runs = _runs(tmp_path)
    folds = [r for r in runs if r.data.tags.get("benchmark.role") == "fold"]
    # The parent shows exactly its folds: the KILLED fold-2 run is soft-deleted once fold 2 is redone...
    assert sorted(int(r.data.tags["benchmark.fold"]) for r in folds) == [0, 1, 2]
    assert all(r.info.status == "FINISHED" for r in folds)
    # ...and stays in MLflow's trash, pointing at the run that replaced it.
    everything = client.search_runs([runs[0].info.experiment_id], run_view_type=ViewType.ALL)
    killed = [r for r in everything if r.info.status == "KILLED"]
    redone = next(r for r in folds if r.data.tags["benchmark.fold"] == "2")
    assert [r.data.tags["benchmark.fold"] for r in killed] == ["2"]
    assert killed[0].info.lifecycle_stage == "deleted"
    assert killed[0].data.tags["benchmark.superseded_by"] == redone.info.run_id
    parents = [r for r in runs if r.data.tags.get("benchmark.role") == "parent"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
