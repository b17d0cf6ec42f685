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


def test_listing_and_split_commands_import_no_tracking_tuning_or_plotting(tmp_path):
    """`datasets`, `models` and `splits show` must start fast: no mlflow, optuna or seaborn."""
    code = (
        "import sys, io, contextlib; from benchmark.cli.main import main\n"
        "for argv in (['datasets'], ['models'], ['splits', 'show', '--dataset', 'panda-sim', '--scale', '0.2',\n"
        f"             '--cache-dir', {str(tmp_path / 'c')!r}, '--splits-dir', {str(tmp_path / 's')!r}]):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        assert main(argv) == 0, argv\n"
        "print(sorted(m for m in ('mlflow', 'optuna', 'seaborn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
