"""Fixtures of the cluster tests: the Slurm partition .ci/slurm.sh exports and an MLflow server on the
PostgreSQL database .ci/postgres.sh creates (the team setup of docs/scaling.md). Locally the tests skip when
either is missing; under ``CI=true`` they fail, so CI cannot skip them silently."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.tracking import browser


def _require(missing: str | None) -> None:
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {missing} before the tests (.ci/run must do it).")
        pytest.skip(missing)


@pytest.fixture(scope="module")
def slurm_partition() -> str:
    """The partition .ci/slurm.sh exports."""
    try:
        import submitit  # noqa: F401
    except ImportError:
        _require("submitit is not installed (pip install 'hmil-bench[slurm]')")
    if not os.environ.get("HMIL_BENCH_TEST_SLURM"):
        _require("HMIL_BENCH_TEST_SLURM is not set: start a cluster with `source .ci/slurm.sh`")
    return os.environ.get("HMIL_BENCH_SLURM_PARTITION", "debug")


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory) -> Iterator[str]:
    """``mlflow server`` on PostgreSQL (artifacts proxied to a temporary folder); yields its URL."""
    db = os.environ.get("HMIL_BENCH_TEST_MLFLOW_DB")
    if not db:
        _require("HMIL_BENCH_TEST_MLFLOW_DB is not set: start PostgreSQL with `source .ci/postgres.sh`")
    tmp = tmp_path_factory.mktemp("cluster-mlflow")
    with browser.mlflow_server(db, tmp / "server.log", artifacts=tmp / "artifacts") as url:
        yield url
