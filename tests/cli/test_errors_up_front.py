"""Options are checked up front, cheapest and most specific first (names, then store URLs, then numbers); each
bad one is one ``error:`` line naming the option, what is wrong and the fix, exit 2, with nothing before it."""

from __future__ import annotations

import pytest

from benchmark.cli.args import build_parser
from benchmark.cli.main import main
from benchmark.cli.requests import run_request
from benchmark.tracking.store import check_tracking_uri


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error: ")]


def _main(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _run_args(tmp, *args: str) -> list[str]:
    return [
        "run",
        "--dataset",
        "panda-sim",
        "--scale",
        "0.1",
        "--models",
        "meanpool",
        "--epochs",
        "1",
        "--no-compare",
        "--splits-dir",
        str(tmp / "splits"),
        "--cache-dir",
        str(tmp / "cache"),
        *args,
    ]


@pytest.mark.parametrize(
    ("uri", "needle"),
    [
        ("nosuchscheme://x", "unknown scheme 'nosuchscheme'"),
        ("http//bad", "not a URI"),
        ("sqlite://mlflow.db", "sqlite:/// then a file"),
        ("https://", "no host"),
        ("file:///tmp/mlruns", "MLFLOW_ALLOW_FILE_STORE"),
    ],
)
def test_bad_tracking_uri_is_one_error_before_any_work(tmp_path, capsys, monkeypatch, uri, needle):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    code, out, err = _main(capsys, *_run_args(tmp_path, "--tracking-uri", uri))
    assert code == 2, err
    assert len(_errors(err)) == 1, err
    line = _errors(err)[0]
    assert (
        line.startswith(f"error: --tracking-uri {uri}: ") and needle in line and "sqlite:///mlflow.db" in line
    )
    assert not (tmp_path / "splits").exists()  # refused before the data were split


def test_missing_sqlite_directory_is_reported(tmp_path):
    with pytest.raises(Exception, match="does not exist; create it first"):
        check_tracking_uri(f"sqlite:///{tmp_path}/nope/mlflow.db")


@pytest.mark.parametrize(
    "uri", ["sqlite:///mlflow.db", "http://localhost:5000", "https://mlflow.example.org", "postgresql:///db"]
)
def test_good_tracking_uris_pass(uri):
    assert check_tracking_uri(uri) == uri


def test_bad_tracking_uri_from_the_environment_names_the_variable(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "bogus://x")
    code, _, err = _main(capsys, *_run_args(tmp_path))
    assert code == 2 and _errors(err)[0].startswith("error: MLFLOW_TRACKING_URI bogus://x: unknown scheme"), (
        err
    )


@pytest.mark.parametrize(
    ("storage", "needle"),
    [
        ("nosuch://x", "unknown scheme 'nosuch'"),
        ("optuna.db", "is not a storage URL (no scheme://)"),
        ("sqlite://optuna.db", "sqlite:/// then a file"),
        ("journal:/no/such/dir/optuna.log", "does not exist"),
    ],
)
def test_bad_storage_is_one_error_before_any_work(tmp_path, capsys, storage, needle):
    code, _, err = _main(
        capsys,
        "tune",
        "--models",
        "meanpool",
        "--trials",
        "1",
        "--dataset",
        "panda-sim",
        "--scale",
        "0.1",
        "--splits-dir",
        str(tmp_path / "splits"),
        "--tracking-uri",
        f"sqlite:///{tmp_path}/x.db",
        "--storage",
        storage,
    )
    assert code == 2, err
    assert len(_errors(err)) == 1 and _errors(err)[0].startswith(f"error: --storage {storage}"), err
    assert needle in _errors(err)[0]
    assert not (tmp_path / "splits").exists() and not (tmp_path / "x.db").exists()


def test_model_name_is_checked_before_the_folds_rule(tmp_path, capsys):
    code, _, err = _main(capsys, *_run_args(tmp_path, "--models", "abmill", "--folds", "1"))
    assert code == 2 and len(_errors(err)) == 1, err
    assert "unknown model 'abmill' for --models" in err and "Did you mean 'abmil'?" in err
    assert "n_folds" not in err


def test_dataset_name_is_checked_before_the_folds_rule(tmp_path, capsys):
    code, _, err = _main(capsys, "run", "--dataset", "pandasim", "--models", "abmil", "--folds", "1")
    assert code == 2 and "unknown dataset 'pandasim' for --dataset" in err and "n_folds" not in err, err


def test_names_are_case_insensitive_and_kept_lowercase():
    parser, _ = build_parser("test")
    args = parser.parse_args(["run", "--models", "ABMIL,MeanPool,abmil", "--dataset", "PANDA-SIM"])
    request = run_request(args)
    assert request.models == ["abmil", "meanpool"]  # canonical, duplicates dropped: config hashes unchanged
    assert request.data.name == "panda-sim"


@pytest.mark.parametrize("option", ["--model", "--models"])
def test_tune_names_the_option_typed(tmp_path, capsys, option):
    code, _, err = _main(capsys, "tune", option, "abmill", "--trials", "1", "--splits-dir", str(tmp_path))
    assert code == 2 and f"unknown model 'abmill' for {option};" in err, err


def test_no_blank_line_before_an_error_raised_under_the_progress_display(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("BENCHMARK_DATA_DIR", raising=False)
    args = _run_args(tmp_path, "--dataset", "panda", "--tracking-uri", f"sqlite:///{tmp_path}/x.db")
    code, out, err = _main(capsys, *args)
    assert code == 2 and len(_errors(err)) == 1, err
    assert out == ""  # rich's empty progress frame used to print "\n" here


def test_data_check_states_a_missing_data_dir_once_and_shows_the_layout(capsys, monkeypatch):
    monkeypatch.delenv("BENCHMARK_DATA_DIR", raising=False)
    code, out, err = _main(capsys, "data", "check", "--dataset", "panda")
    assert code == 2 and len(_errors(err)) == 1, err
    assert (out + err).count("no data directory given") == 1
    assert "train.csv" in out and "pt_files/<slide_id>.pt" in out  # the expected layout itself


def test_datasets_shows_the_layout_that_data_errors_point_to(capsys):
    code, out, _ = _main(capsys, "datasets")
    assert code == 0
    for name in ("panda", "bracs", "csv"):
        assert f"{name} expects" in out
    assert "[groups] coarse" in out  # printed verbatim, not read as rich markup


def test_validate_writes_to_the_working_directory_by_default():
    parser, _ = build_parser("test")
    assert parser.parse_args(["validate"]).output == "validation.md"  # not the tracked docs/validation.md
