"""``benchmark perf``: the three paths and their ratios, CLAM's loop re-reading files, the same loss (instance
term included) in every path, the bag-size regimes and their user errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from rich.console import Console

import benchmark.run.perf_paths as paths_mod
from benchmark.cli.main import main
from benchmark.cli.render import render_perf
from benchmark.core.config import CVConfig, DataConfig
from benchmark.core.errors import ConfigError
from benchmark.core.hierarchy import Hierarchy
from benchmark.core.overrides import Overrides
from benchmark.run.perf import PerfReport
from benchmark.run.perf_bags import fixed_size_bags, parse_bags, perf_split, realistic_bags
from benchmark.run.perf_paths import batched_path, floor_path, reference_path, write_pt_files
from benchmark.run.resolve import resolve_run_config

HIER = Hierarchy.from_groups({"neg": ["a"], "pos": ["b", "c"]})


def _bags(n: int = 10, sizes: tuple[int, int] = (3, 7)):
    return realistic_bags(HIER, np.ones(3), n_slides=n, sizes=sizes, dim=16, seed=0)


def _config(model: str, **train: object):
    train = {"epochs": 1, "patience": 0, "device": "cpu", **train}
    return resolve_run_config(model, data=DataConfig(), cv=CVConfig(), overrides=Overrides(train=train))


def test_cli_reports_three_paths_with_ratios_and_the_regime(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["perf", "--bags", "8", "--slides", "10", "--epochs", "1", "--models", "clam-sb"]
    assert main([*argv, "--threads", "1", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    regime = report["regime"]
    assert (regime["bag_min"], regime["bag_median"], regime["bag_max"]) == (8, 8.0, 8)
    assert (regime["slides"], regime["threads"], regime["device"]) == (10, 1, "cpu")
    rows = {r["path"]: r for r in report["rows"]}
    assert list(rows) == ["reference", "batched", "floor"]
    assert rows["reference"]["speed_vs_reference"] == rows["floor"]["speed_vs_floor"] == 1.0
    for r in rows.values():
        assert r["epoch_s"] > 0 and r["train_slides_per_s"] > 0 and r["peak_rss_mib"] > 0
        assert np.isfinite([r["speed_vs_reference"], r["speed_vs_floor"]]).all()
        assert "instance" in r["loss"]  # CLAM's instance loss is trained in every path
    assert rows["reference"]["steps"] == rows["reference"]["train_slides"]  # batch 1

    # The Markdown rendering (docs/results/perf.md) of the same report: a header naming the regime, 3 rows.
    console = Console(record=True, width=400)
    render_perf(console, PerfReport(**report), markdown=True)
    text = console.export_text()
    assert "8/8/8 instances per bag" in text and "1 thread(s), cpu" in text
    assert text.count("| clam-sb |") == 3 and "speed vs floor" in text


@pytest.mark.parametrize("value", ["huge", "0", "-3", "1.5"])
def test_bad_bags_is_a_one_line_user_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["perf", "--bags", value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("error: --bags") and "realistic" in err[0]
    with pytest.raises(ConfigError, match="--bags"):
        parse_bags(value)


def test_reference_reads_every_bag_from_its_file_at_every_step_and_validation(tmp_path, monkeypatch) -> None:
    bags = _bags()
    train, val = perf_split(bags)
    files = write_pt_files(bags, tmp_path)
    assert all(p.parent.name == "pt_files" and p.exists() for p in files)
    loaded: list[str] = []
    real_load = torch.load
    monkeypatch.setattr(paths_mod.torch, "load", lambda p, **kw: loaded.append(p.stem) or real_load(p, **kw))
    timing = reference_path(_config("abmil", epochs=2), bags, files, train, val)
    assert timing.steps == 2 * len(train)
    assert len(loaded) == 2 * (len(train) + len(val))
    assert sorted(loaded) == sorted(2 * [bags.slide_ids[i] for i in np.concatenate([train, val])])


def test_reference_trains_the_trainers_loss_with_clams_instance_term(tmp_path) -> None:
    # Batch 1 without bucketing visits the slides in the reference loop's order, so the losses must agree.
    bags = _bags()
    train, val = perf_split(bags)
    config = _config("clam-sb", epochs=2, batch_size=1, bucket_pool=0)
    assert "instance" in {t.name for t in config.loss}
    ref = reference_path(config, bags, write_pt_files(bags, tmp_path), train, val)
    ours = batched_path(config, bags, train, val)
    assert set(ref.loss) == set(ours.loss) == {"loss", "fine_ce", "instance"}
    for k in ref.loss:
        assert ref.loss[k] == pytest.approx(ours.loss[k], rel=1e-4)


def test_floor_replays_the_batched_paths_batches() -> None:
    bags = _bags(12, (2, 9))
    train, val = perf_split(bags)
    config = _config("clam-sb", epochs=2, batch_size=3, max_instances=4, max_batch_instances=8)
    floor, ours = floor_path(config, bags, train, val), batched_path(config, bags, train, val)
    assert floor.steps == ours.steps
    assert floor.loss == pytest.approx(ours.loss, rel=1e-5)


def test_bag_regimes() -> None:
    assert parse_bags("realistic").kind == "realistic" and parse_bags(" 500 ").size == 500
    big = realistic_bags(HIER, np.array([2.0, 1.0, 1.0]), n_slides=8, sizes=(5, 9), dim=16, seed=1)
    assert big.dim == 16 and big.lengths.min() >= 5 and big.lengths.max() <= 9
    assert np.bincount(big.fine_labels).tolist() == [4, 2, 2]  # the dataset's class shares
    same = fixed_size_bags(big, 6)
    assert (same.lengths == 6).all() and same.fine_labels.tolist() == big.fine_labels.tolist()
    assert (fixed_size_bags(big, 20).lengths == 20).all()  # longer than any bag: drawn with replacement
