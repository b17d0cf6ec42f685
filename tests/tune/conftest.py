"""Shared helpers of the study tests: tiny tune arguments (48 slides, 2 folds, 1 epoch) in a temp dir."""

from __future__ import annotations

import os

import pytest

from tests.requirements import require


def tune_args(tmp, *extra: str, storage: str | None = None) -> list[str]:
    """`benchmark tune` arguments on panda-sim at scale 0.2 (48 slides), one thread, files under ``tmp``."""
    args = [
        "tune",
        "--dataset",
        "panda-sim",
        "--scale",
        "0.2",
        "--folds",
        "2",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--cache-dir",
        str(tmp / "cache"),
        "--splits-dir",
        str(tmp / "splits"),
        "--tracking-uri",
        f"sqlite:///{tmp}/mlflow.db",
        "--storage",
        storage or f"sqlite:///{tmp}/optuna.db",
    ]
    return [*args, *extra]


@pytest.fixture
def postgres_url() -> str:
    """The PostgreSQL URL .ci/run exports; skip locally without one, fail under CI (no silent skip)."""
    url = os.environ.get("HMIL_BENCH_TEST_POSTGRES")
    require(None if url else "HMIL_BENCH_TEST_POSTGRES not set (start one with `source .ci/postgres.sh`)")
    return url
