"""The parent run's MLflow description: summary line, mean ± std table per level, the command."""

from __future__ import annotations

from benchmark.tracking.description import parent_description


def _agg(levels):
    return {
        f"test.{lv}.{m}": {"mean": v, "std": 0.01, "n": 5}
        for lv in levels
        for m, v in (("auc", 0.81234), ("accuracy", 0.5), ("qwk", float("nan")))
    }


def test_the_table_has_one_column_per_level_with_values_and_skips_absent_levels():
    note = parent_description(
        "abmil",
        "panda-sim",
        _agg(["fine", "coarse"]),
        n_finished=4,
        n_folds=5,
        split_digest="a" * 64,
        config_hash="b" * 16,
        command="benchmark run --models abmil",
    )
    lines = note.splitlines()
    assert lines[0] == "**abmil** test AUC (mean ± std over folds): fine 0.812 ± 0.010 · coarse 0.812 ± 0.010"
    assert lines[2] == "`panda-sim`: 4/5 folds finished · split `aaaaaaaaaaaa` · config `bbbbbbbbbbbb`"
    assert "| test metric | fine | coarse |" in lines and "coarse head" not in note
    assert "| AUC (macro OvR) | 0.812 ± 0.010 | 0.812 ± 0.010 |" in lines
    assert "| quadratic κ | – | – |" in lines  # undefined metrics are a dash, not "nan"
    assert "| F1 macro |" not in note  # never logged: no row
    assert lines[-1] == "Command: `benchmark run --models abmil`"


def test_a_coarse_head_column_appears_for_models_that_have_one():
    note = parent_description(
        "hmil",
        "panda-sim",
        _agg(["fine", "coarse", "coarse_head"]),
        n_finished=5,
        n_folds=5,
        split_digest="c" * 64,
        config_hash="d" * 16,
        command=None,
    )
    assert "| test metric | fine | coarse | coarse head |" in note and "Command:" not in note
