"""The parser: `--help` stays light, and defaults shown in help agree with the library's."""

from __future__ import annotations

import subprocess
import sys

from benchmark.cli.args_studies import VALIDATE_DATASETS, VALIDATE_MODELS
from benchmark.reproduce.protocol import DEFAULT_DATASETS, DEFAULT_MODELS


def test_validate_help_defaults_are_the_protocol_defaults():
    assert (VALIDATE_DATASETS, VALIDATE_MODELS) == (DEFAULT_DATASETS, DEFAULT_MODELS)


def test_building_the_parser_imports_no_heavy_library():
    """The command map imports command modules lazily; the parser itself must not pull torch/mlflow/optuna."""
    code = (
        "import sys; from benchmark.cli.main import build_parser; build_parser('x'); "
        "print(sorted(m for m in ('torch', 'mlflow', 'optuna', 'pandas', 'seaborn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
