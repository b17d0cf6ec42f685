"""`benchmark data stats`: the statistics against numpy by hand, the CLI and the figure."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.cli.main import main
from benchmark.core.hierarchy import Hierarchy
from benchmark.data.bags import BagCollection
from benchmark.data.stats import between_group_share, effective_rank, feature_stats

HIER = Hierarchy.from_groups({"a": ["f0"], "b": ["f1"]})


def _tiny() -> tuple[BagCollection, np.ndarray]:
    x = np.array(
        [
            [0.0, 1.0, 2.0],
            [1.0, 0.0, -1.0],
            [2.0, 2.0, 0.0],
            [0.0, 0.0, 3.0],
            [4.0, 1.0, 1.0],
            [1.0, 3.0, 0.0],
        ],
        dtype=np.float32,
    )
    bags = BagCollection(
        name="tiny",
        slide_ids=["s0", "s1", "s2"],
        case_ids=["s0", "s1", "s2"],
        fine_labels=np.array([0, 1, 1]),
        features=x,
        offsets=np.array([0, 2, 3, 6]),
        hierarchy=HIER,
    )
    return bags, np.array([0, 1, 1, 0, 1, 0])


def test_statistics_match_numpy_by_hand():
    bags, patterns = _tiny()
    x = bags.features.astype(np.float64)
    s = feature_stats(bags, instance_labels=patterns)
    lam = np.sort(np.linalg.eigvalsh(np.cov(x, rowvar=False)))[::-1]  # an independent route: eigh of cov
    np.testing.assert_allclose(s.eigenvalues, lam, atol=1e-9)
    assert s.total_variance == pytest.approx(np.trace(np.cov(x, rowvar=False)))
    assert s.pc1_share == pytest.approx(lam[0] / lam.sum())
    assert s.top10_share == pytest.approx(1.0)  # D = 3 < 10
    assert s.effective_rank == pytest.approx(lam.sum() ** 2 / (lam**2).sum())
    assert s.pcs_for_50 == int(np.argmax(np.cumsum(lam) / lam.sum() >= 0.5)) + 1
    assert s.frac_negative == pytest.approx(1 / 18) and s.frac_zero == pytest.approx(6 / 18)
    assert s.dim_mean["max"] == pytest.approx(x.mean(0).max()) and s.dim_std["min"] == pytest.approx(
        x.std(0).min()
    )
    assert s.bag_size["median"] == 2 and s.bag_size["max"] == 3 and s.bag_size["mean"] == pytest.approx(2.0)
    mu = x.mean(0)
    between = sum((patterns == g).sum() * ((x[patterns == g].mean(0) - mu) ** 2).sum() for g in (0, 1))
    assert s.pattern_variance_share == pytest.approx(between / ((x - mu) ** 2).sum())
    means = np.stack([x[0:2].mean(0), x[2:3].mean(0), x[3:6].mean(0)])
    assert s.slide_class_variance_share == pytest.approx(between_group_share(means, np.array([0, 1, 1])))


def test_sampling_is_seeded_and_bounded():
    bags, _ = _tiny()
    a = feature_stats(bags, max_instances=4, seed=3)
    assert a.n_sampled == 4 and a == feature_stats(bags, max_instances=4, seed=3)


def test_helpers_on_edge_cases():
    assert effective_rank(np.array([1.0, 0.0, 0.0])) == pytest.approx(1.0)
    assert effective_rank(np.ones(5)) == pytest.approx(5.0)
    assert effective_rank(np.zeros(3)) == 0.0
    assert between_group_share(np.ones((4, 2)), np.array([0, 0, 1, 1])) is None  # no variance
    assert between_group_share(np.eye(3), np.zeros(3)) is None  # one group


def test_cli_json_and_figure(tmp_path, capsys):
    plot = tmp_path / "spectrum.png"
    code = main(
        [
            "data",
            "stats",
            "--dataset",
            "digits-panda",
            "--format",
            "json",
            "--plot",
            str(plot),
            "--cache-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["dataset"] == "digits-panda" and doc["dim"] == 64
    assert 0 < doc["pattern_variance_share"] < 1 and doc["effective_rank"] > 1
    assert plot.stat().st_size > 10_000


def test_cli_rejects_a_bad_sample_size(capsys):
    assert main(["data", "stats", "--dataset", "digits-panda", "--max-instances", "1"]) == 2
    assert "--max-instances must be ≥ 2" in capsys.readouterr().err
