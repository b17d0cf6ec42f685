"""Real-MLflow-server fixtures shared by the tracking and cluster tests: ``mlflow server`` on the PostgreSQL
database that .ci/run starts (``HMIL_BENCH_TEST_MLFLOW_DB``, see .ci/postgres.sh) with a served artifact
root, as the team setup of docs/scaling.md runs it. Imported by the conftest files that use them."""

from __future__ import annotations

import os
from collections.abc import Iterator

import mlflow
import pytest

from tests.requirements import require
from tests.tracking import browser

__all__ = ["keep_tracking_uri", "mlflow_db", "mlflow_server"]


@pytest.fixture(scope="module")
def keep_tracking_uri() -> Iterator[None]:
    """`configure` sets MLflow's process-wide tracking URI and, through it, MLFLOW_TRACKING_URI: put both back
    so that no later test in this process inherits the URL of a server that is gone."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    mlflow.set_tracking_uri(before)  # None unsets the variable again


@pytest.fixture(scope="module")
def mlflow_db() -> str:
    """The MLflow database URL .ci/run exports; skip locally without one, fail under CI (no silent skip)."""
    url = os.environ.get("HMIL_BENCH_TEST_MLFLOW_DB")
    require(
        None if url else "HMIL_BENCH_TEST_MLFLOW_DB not set (start PostgreSQL with `source .ci/postgres.sh`)"
    )
    return url


@pytest.fixture(scope="module")
def mlflow_server(mlflow_db, tmp_path_factory) -> Iterator[str]:
    """``mlflow server`` on PostgreSQL with artifacts proxied to a temporary directory; yields its URL. The
    database outlives the test session's server, so each test logs to an experiment of its own name."""
    tmp = tmp_path_factory.mktemp("mlflow-server")
    with browser.mlflow_server(mlflow_db, tmp / "server.log", artifacts=tmp / "artifacts") as url:
        yield url
