"""Fixtures of the cluster tests: the Slurm partition .ci/slurm.sh exports and an MLflow server on the
PostgreSQL database .ci/postgres.sh creates (the team setup of docs/scaling.md). Locally the tests skip when
either is missing; under ``CI=true`` they fail, so CI cannot skip them silently."""

from __future__ import annotations

import os

import pytest

from tests.requirements import require
from tests.tracking.server import keep_tracking_uri, mlflow_db, mlflow_server

__all__ = ["keep_tracking_uri", "mlflow_db", "mlflow_server", "slurm_partition", "tracking_server"]


@pytest.fixture(scope="module")
def slurm_partition() -> str:
    """The partition .ci/slurm.sh exports."""
    try:
        import submitit  # noqa: F401
    except ImportError:
        require("submitit is not installed (pip install 'hmil-bench[slurm]')")
    if not os.environ.get("HMIL_BENCH_TEST_SLURM"):
        require("HMIL_BENCH_TEST_SLURM is not set: start a cluster with `source .ci/slurm.sh`")
    return os.environ.get("HMIL_BENCH_SLURM_PARTITION", "debug")


@pytest.fixture(scope="module")
def tracking_server(mlflow_server: str) -> str:
    """The MLflow server on PostgreSQL of the tracking tests (`tests.tracking.conftest.mlflow_server`)."""
    return mlflow_server
