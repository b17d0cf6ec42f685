"""``--executor local``: worker processes give the same runs as inline, every parent exists once and is closed
once, and executor options are checked before any work."""

from __future__ import annotations

import math

import pytest
from mlflow.tracking import MlflowClient

from benchmark.cli.main import main
from benchmark.core.errors import ConfigError
from benchmark.run.request import RunRequest


def _run(tmp, *extra):
    tmp.mkdir(parents=True, exist_ok=True)
    args = [
        "run",
        "--dataset",
        "digits-panda",
        "--models",
        "abmil,meanpool",
        "--folds",
        "2",
        "--epochs",
        "2",
        "--no-compare",
        "--cache-dir",
        str(tmp / "cache"),
        "--splits-dir",
        str(tmp / "splits"),
        "--tracking-uri",
        f"sqlite:///{tmp}/m.db",
        *extra,
    ]
    assert main(args) == 0
    client = MlflowClient(f"sqlite:///{tmp}/m.db")
    exp = client.get_experiment_by_name("digits-panda")
    return client.search_runs([exp.experiment_id])


def _metrics(runs):
    """(method, role, fold) → metrics without wall-clock ones."""
    clock = ("seconds", "per_s", "memory")
    return {
        (r.data.tags["benchmark.method"], r.data.tags["benchmark.role"], r.data.tags.get("benchmark.fold")): {
            k: "nan" if math.isnan(v) else v  # NaN != NaN: compare undefined values as equal
            for k, v in r.data.metrics.items()
            if not any(c in k for c in clock)
        }
        for r in runs
        if r.data.tags.get("benchmark.role") in ("parent", "fold")
    }


def test_local_workers_give_the_inline_runs(tmp_path):
    inline = _run(tmp_path / "inline", "--threads", "1")
    local = _run(tmp_path / "local", "--executor", "local", "--jobs", "2")  # 1 thread per worker on 2 CPUs
    parents = [r for r in local if r.data.tags.get("benchmark.role") == "parent"]
    folds = [r for r in local if r.data.tags.get("benchmark.role") == "fold"]
    assert len(parents) == 2 and all(p.info.status == "FINISHED" for p in parents)
    assert len(folds) == 4 and all(f.info.status == "FINISHED" for f in folds)
    assert {f.data.params["compute.threads"] for f in folds} == {"1"}
    want, got = _metrics(inline), _metrics(local)
    assert want.keys() == got.keys() and all(len(m) > 50 for m in want.values())
    assert got == want  # bit-identical: same seeds, same thread count, same code path per cell


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"executor": "slurmx"}, "--executor must be one of inline, local"),
        ({"jobs": 2}, "--jobs and --devices need --executor local"),
        ({"executor": "local", "jobs": 0}, "--jobs must be ≥ 1"),
    ],
)
def test_executor_options_are_checked_up_front(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        RunRequest(models=["abmil"], **kwargs)


def test_jobs_without_local_is_one_error_line(tmp_path, capsys):
    code = main(["run", "--dataset", "digits-panda", "--models", "abmil", "--jobs", "2"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: --jobs and --devices need --executor local")


def test_slurm_refuses_a_sqlite_store_with_one_line(tmp_path, capsys):
    code = main(
        [
            "run", "--dataset", "digits-panda", "--models", "abmil", "--executor", "slurm",
            "--cache-dir", str(tmp_path / "cache"), "--splits-dir", str(tmp_path / "splits"),
            "--tracking-uri", f"sqlite:///{tmp_path}/m.db",
        ]
    )  # fmt: skip
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(err) == 1
    assert "SQLite is not safe for workers on several nodes" in err[0] and "http://HOST:5000" in err[0]
