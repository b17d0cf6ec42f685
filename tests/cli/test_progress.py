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


def test_the_estimate_uses_each_methods_own_pace_and_the_mean_before_its_first_fold():
    from benchmark.cli.pace import Pace, duration

    pace = Pace(["abmil", "transmil"], [0, 1, 2, 3, 4], {"abmil": 20, "transmil": 20})
    assert pace.seconds_left() is None and pace.estimate_line() is None
    assert "2 method(s) × 5 fold(s), ≤ 20 epochs each (at most 200 epochs)" in pace.plan_line()
    pace.fold_done("abmil", 10.0)
    assert pace.seconds_left() == 4 * 10.0 + 5 * 10.0  # transmil untimed: the mean so far
    assert "(1 method(s) not timed yet: rough)" in pace.estimate_line()
    pace.fold_done("transmil", 40.0)
    assert pace.seconds_left() == 4 * 10.0 + 4 * 40.0
    assert pace.estimate_line() == "estimate: about 3 min more for 8 fold(s) at the pace so far"
    pace.skipped("abmil", 4)  # finished earlier: nothing left to run for abmil
    assert pace.seconds_left() == 4 * 40.0
    assert [duration(s) for s in (45, 720, 9000)] == ["45 s", "12 min", "2.5 h"]


def test_progress_bars_stay_readable_at_80_columns():
    console = Console(file=io.StringIO(), force_terminal=True, width=80)
    observer = RichObserver(console)
    observer.on_plan(["hmil-code", "abmil"], [0, 1, 2, 3, 4], {"hmil-code": 20, "abmil": 20})
    observer.on_model_start("hmil-code", [0, 1, 2, 3, 4], [], 20)
    observer.on_fold_start("hmil-code", 0)
    observer.on_fold_end("hmil-code", 0, _outcome())
    observer.on_fold_start("hmil-code", 1)
    observer.on_epoch("hmil-code", 1, 3, {"train.loss": 1.2345, "val.fine.auc": 0.8123})
    snapshot = Console(
        width=80, file=io.StringIO(), record=True, force_terminal=True, color_system="standard"
    )
    snapshot.print(observer.progress.make_tasks_table(observer.progress.tasks))
    lines = snapshot.export_text().splitlines()
    assert len(lines) == 2 and all(len(line) <= 80 for line in lines)
    assert all(line.count("━") + line.count("╺") + line.count("╸") >= 14 for line in lines)  # bars intact
    assert "fold 0 AUC 0.790 · ≈" in lines[0] and "loss 1.234 · val AUC 0.812" in lines[1]


def test_the_first_epoch_warm_up_is_left_out_of_the_pace():
    from benchmark.cli.progress import steady_seconds

    # start 0, epochs end at 8 (warm-up), 9, 10, 11; the fold ends at 11.5 (test and logging)
    assert steady_seconds([0.0, 8.0, 9.0, 10.0, 11.0], 11.5) == 1.0 + 3.5
    assert steady_seconds([0.0, 8.0], 9.0) == 9.0  # one epoch: taken as measured
