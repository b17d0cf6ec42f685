"""pyproject.toml: the licence is a PEP 639 SPDX string (a table makes setuptools ≥ 77 warn on every install),
so the build backend must be a setuptools that reads it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_license_is_an_spdx_string_and_setuptools_supports_it():
    data = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    assert data["project"]["license"] == "MIT"
    (setuptools,) = [r for r in data["build-system"]["requires"] if r.startswith("setuptools")]
    assert int(re.search(r">=\s*(\d+)", setuptools).group(1)) >= 77
    assert not any(c.startswith("License ::") for c in data["project"].get("classifiers", []))
