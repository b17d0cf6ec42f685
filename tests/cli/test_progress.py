"""Piped output: one line per fold that names the model, the fold and its numbers."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from benchmark.cli.progress import RichObserver, fold_line


def _outcome(val_auc=0.8123, test_auc=0.7901, acc=0.55):
    level = lambda auc, a: SimpleNamespace(overall={"auc": auc, "accuracy": a})  # noqa: E731
    return SimpleNamespace(
        val=SimpleNamespace(levels={"fine": level(val_auc, 0.5)}),
        test=SimpleNamespace(levels={"fine": level(test_auc, acc)}),
        epochs_run=14,
        best_epoch=9,
        seconds=12.34,
    )


def test_the_fold_line_names_model_fold_position_and_numbers():
    line = fold_line("abmil", 2, [0, 1, 2, 3, 4], 20, _outcome())
    assert line == (
        "abmil fold 2 (3/5): 14/20 epochs, best 9, val AUC 0.812, test fine AUC 0.790, acc 0.550, 12.3 s"
    )


def test_a_piped_console_gets_one_line_per_fold_and_a_terminal_none():
    for terminal, expected in ((False, 1), (True, 0)):
        out = io.StringIO()
        console = Console(file=out, force_terminal=terminal, width=200)
        with RichObserver(console) as observer:
            observer.on_model_start("abmil", [0, 1], [], 20)
            observer.on_fold_start("abmil", 0)
            observer.on_fold_end("abmil", 0, _outcome())
        assert out.getvalue().count("abmil fold 0 (1/2): 14/20 epochs") == expected
