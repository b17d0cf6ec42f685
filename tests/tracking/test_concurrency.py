"""Two processes opening one new SQLite MLflow store at the same moment both succeed (no alembic race)."""

from __future__ import annotations

import subprocess
import sys
import time


def test_concurrent_first_open_of_a_sqlite_store(tmp_path):
    uri = f"sqlite:///{tmp_path}/fresh.db"
    code = (
        "import sys, time; from benchmark.tracking.store import configure, ensure_experiment; "
        "from mlflow.tracking import MlflowClient; "
        "start = float(sys.argv[2]); time.sleep(max(0.0, start - time.time())); "  # both open at one instant
        "configure(sys.argv[1]); print(ensure_experiment(MlflowClient(), 'e' + sys.argv[3]))"
    )
    start = f"{time.time() + 6:.3f}"  # after both interpreters have imported mlflow
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, uri, start, str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert [r[2] for r in results] == [0, 0], [r[1][-500:] for r in results]
