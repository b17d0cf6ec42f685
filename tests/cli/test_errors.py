"""Each bad input gets a one-line error, exit code 2, and leaves no FINISHED MLflow run."""

from __future__ import annotations

import csv
import sqlite3

import numpy as np
import pytest
import torch

from benchmark.cli.main import main
from benchmark.data import fixtures as fx

GROUPS = {"benign": ["A"], "atypical": ["B"], "malignant": ["C"]}


class Payload:
    """An arbitrary object: pickling it into a .pt file must never be unpickled by the loader."""


def _finished_runs(tmp) -> int:
    db = tmp / "x.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        return con.execute("SELECT COUNT(*) FROM runs WHERE status = 'FINISHED'").fetchone()[0]


def _run(tmp, capsys, *args) -> tuple[int, str]:
    capsys.readouterr()
    code = main(
        [
            "run",
            "--models",
            "meanpool",
            "--folds",
            "2",
            "--epochs",
            "1",
            "--no-compare",
            "--cache-dir",
            str(tmp / "cache"),
            "--splits-dir",
            str(tmp / "splits"),
            "--tracking-uri",
            f"sqlite:///{tmp}/x.db",
            *args,
        ]
    )
    return code, capsys.readouterr().err


def _panda(tmp, slides, rows=None, layout="h5"):
    data = tmp / "panda"
    fx.write_panda_csv(data / "train.csv", rows or fx.panda_rows(list(slides)))
    (fx.write_clam_h5 if layout == "h5" else fx.write_pt)(data, slides)
    return data


def _csv_dataset(tmp, slides, labels, *, groups=GROUPS, cases=None):
    data = tmp / "csvdata"
    rows = [
        {"slide_id": s, "label": labels[i], "case_id": (cases or list(slides))[i]}
        for i, s in enumerate(slides)
    ]
    fx.write_labels_csv(data / "labels.csv", rows)
    fx.write_hierarchy_toml(data / "hierarchy.toml", groups)
    fx.write_clam_h5(data, slides)
    return data


def _assert_user_error(code, err, tmp, *needles):
    # stderr also carries progress logs (stdout stays clean for --format json); the error is one line.
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2, err
    assert len(errors) == 1, err
    first = errors[0]
    for needle in needles:
        assert needle in first, first
    assert _finished_runs(tmp) == 0


def test_missing_data_dir(tmp_path, capsys):
    code, err = _run(tmp_path, capsys, "--dataset", "panda", "--data-dir", str(tmp_path / "nope"))
    _assert_user_error(code, err, tmp_path, "nope", "panda-sim")


def test_slide_in_csv_without_feature_file(tmp_path, capsys):
    slides = fx.make_slides(12, prefix="s")
    data = _panda(tmp_path, slides)
    (data / "h5_files" / "s_005.h5").unlink()
    code, err = _run(tmp_path, capsys, "--dataset", "panda", "--data-dir", str(data))
    _assert_user_error(code, err, tmp_path, "s_005")


def test_truncated_h5(tmp_path, capsys):
    data = _panda(tmp_path, fx.make_slides(12, prefix="s"))
    path = data / "h5_files" / "s_003.h5"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    code, err = _run(tmp_path, capsys, "--dataset", "panda", "--data-dir", str(data))
    _assert_user_error(code, err, tmp_path, "s_003.h5")


def test_pt_holding_a_pickled_object(tmp_path, capsys):
    data = _panda(tmp_path, fx.make_slides(12, prefix="s"), layout="pt")
    torch.save(Payload(), data / "pt_files" / "s_002.pt")
    code, err = _run(tmp_path, capsys, "--dataset", "panda", "--data-dir", str(data))
    _assert_user_error(code, err, tmp_path, "s_002.pt")


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda s: s.__setitem__("s_004", np.ones((5, 9), np.float32)), "s_004"),  # width differs
        (lambda s: s["s_004"].__setitem__((0, 0), np.nan), "s_004"),  # NaN feature
        (lambda s: s.__setitem__("s_004", np.zeros((0, 8), np.float32)), "s_004"),  # empty bag
    ],
    ids=["dims-differ", "nan", "empty-bag"],
)
def test_bad_feature_values(tmp_path, capsys, mutate, needle):
    slides = fx.make_slides(12, prefix="s")
    mutate(slides)
    data = _panda(tmp_path, slides)
    code, err = _run(tmp_path, capsys, "--dataset", "panda", "--data-dir", str(data))
    _assert_user_error(code, err, tmp_path, needle)


def test_label_outside_hierarchy(tmp_path, capsys):
    slides = fx.make_slides(9, prefix="s")
    data = _csv_dataset(tmp_path, slides, ["A", "B", "C"] * 2 + ["A", "B", "Z"])
    code, err = _run(tmp_path, capsys, "--dataset", "csv", "--data-dir", str(data))
    _assert_user_error(code, err, tmp_path, "outside the hierarchy (Z", "s_008")


def test_duplicate_slide_ids(tmp_path, capsys):
    slides = fx.make_slides(12, prefix="s")
    rows = fx.panda_rows(list(slides))
    data = _panda(tmp_path, slides, rows=[*rows, rows[3]])
    code, err = _run(tmp_path, capsys, "--dataset", "panda", "--data-dir", str(data))
    _assert_user_error(code, err, tmp_path, "s_003")


def test_hierarchy_toml_with_two_parents(tmp_path, capsys):
    slides = fx.make_slides(9, prefix="s")
    data = _csv_dataset(tmp_path, slides, ["A", "B", "C"] * 3, groups={"x": ["A", "B"], "y": ["B", "C"]})
    code, err = _run(tmp_path, capsys, "--dataset", "csv", "--data-dir", str(data))
    _assert_user_error(code, err, tmp_path, "hierarchy.toml", "'B' has two parents")


def test_split_file_edited_so_a_case_leaks_into_test(tmp_path, capsys):
    slides = fx.make_slides(24, prefix="s")
    cases = [f"p{i // 2:02d}" for i in range(24)]  # two slides per case
    data = _csv_dataset(tmp_path, slides, ["A", "A", "B", "B", "C", "C"] * 4, cases=cases)
    assert (
        main(
            [
                "splits",
                "make",
                "--dataset",
                "csv",
                "--data-dir",
                str(data),
                "--folds",
                "2",
                "--splits-dir",
                str(tmp_path / "splits"),
                "--cache-dir",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    path = tmp_path / "splits" / "csv" / "kfold-k2-seed0.csv"
    rows = list(csv.DictReader(path.open()))
    first = next(r for r in rows if r["fold_0"] == "train")
    sibling = next(r for r in rows if r["case_id"] == first["case_id"] and r is not first)
    sibling["fold_0"] = "test"  # one slide of a training case moves to test
    first["fold_0"] = "train"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    code, err = _run(tmp_path, capsys, "--dataset", "csv", "--data-dir", str(data), "--splits", str(path))
    _assert_user_error(code, err, tmp_path, first["case_id"])


def test_unknown_model_lists_valid_names(tmp_path, capsys):
    code, err = _run(tmp_path, capsys, "--dataset", "panda-sim", "--models", "abmli", "--scale", "0.1")
    _assert_user_error(code, err, tmp_path, "abmil", "Did you mean")
