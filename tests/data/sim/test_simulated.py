"""Simulated datasets: label rules, determinism, caching, sizes, hierarchies."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest

from benchmark.core.config import DataConfig
from benchmark.core.errors import ConfigError
from benchmark.data.bags import pad_batch
from benchmark.data.loading import DATASETS
from benchmark.data.sim import core as _sim_core
from benchmark.data.sim import datasets as sim
from benchmark.data.sim import store as _sim_store
from benchmark.data.sim.bracs import bracs_plan
from benchmark.data.sim.datasets import (
    BRACS_HIERARCHY,
    PANDA_HIERARCHY,
    BracsSimParams,
    PandaSimParams,
    bracs_label,
    gleason_score,
    isup_grade,
    load_bracs_sim,
    load_panda_sim,
)
from benchmark.data.sim.panda import panda_plan


def _cfg(tmp_path, name="panda-sim", seed=0, scale=0.1):
    return DataConfig(name=name, seed=seed, scale=scale, cache_dir=str(tmp_path))


# ------------------------------------------------------------------ label rules
@pytest.mark.parametrize(
    ("c3", "c4", "c5", "score", "isup"),
    [
        (0, 0, 0, (0, 0), 0),
        (9, 0, 0, (3, 3), 1),
        (10, 3, 0, (3, 4), 2),  # mostly 3, some 4
        (3, 10, 0, (4, 3), 3),  # mostly 4, some 3
        (10, 3, 1, (3, 5), 4),  # 3 major + 4 + a little 5: highest other pattern counts
        (0, 8, 0, (4, 4), 4),
        (2, 0, 9, (5, 3), 4),
        (0, 8, 2, (4, 5), 5),
        (0, 0, 6, (5, 5), 5),
        (4, 4, 0, (4, 3), 3),  # a tie goes to the higher grade
    ],
)
def test_gleason_score_and_isup(c3, c4, c5, score, isup):
    assert gleason_score(c3, c4, c5) == score
    assert isup_grade(*score) == isup


def test_isup_rejects_impossible_score():
    with pytest.raises(ValueError, match="2\\+3 is not a Gleason score"):
        isup_grade(2, 3)


@pytest.mark.parametrize(
    ("lesions", "label"),
    [([0, 0, 0, 0, 0, 0], 0), ([4, 0, 0, 0, 0, 0], 1), ([3, 0, 0, 1, 0, 0], 4), ([5, 5, 5, 5, 5, 1], 6)],
)
def test_bracs_label_is_worst_lesion(lesions, label):
    assert bracs_label(lesions) == label


def test_panda_labels_follow_composition():
    p = PandaSimParams().scaled(0.5)
    plan = panda_plan(p, seed=3)
    expected = [isup_grade(*gleason_score(*row[3:])) for row in plan.counts]
    np.testing.assert_array_equal(plan.clean_labels, expected)
    flipped = plan.labels != plan.clean_labels
    assert flipped.sum() == round(p.label_noise * p.n_slides)
    assert np.all(
        np.abs(plan.labels - plan.clean_labels)[flipped] == 1
    )  # noise moves to an adjacent grade only
    assert np.all(plan.counts[plan.clean_labels == 0, 3:] == 0)  # benign slides hold no tumour
    assert np.all(plan.counts[plan.clean_labels > 0, 3:].sum(axis=1) >= p.min_tumour)


def test_panda_without_label_noise_is_exact():
    plan = panda_plan(PandaSimParams(label_noise=0.0).scaled(0.2), seed=0)
    np.testing.assert_array_equal(plan.labels, plan.clean_labels)


def test_bracs_plan_label_is_most_severe_lesion_and_patients_repeat():
    plan = bracs_plan(BracsSimParams(), seed=0)
    worst = [max([k + 1 for k, c in enumerate(row[3:]) if c > 0], default=0) for row in plan.counts]
    np.testing.assert_array_equal(plan.clean_labels, worst)
    per_case = np.bincount(plan.cases)
    assert len(per_case) == 189 and per_case.min() >= 1 and per_case.sum() == 547
    assert (per_case >= 2).sum() > 100  # most patients have several slides


# ------------------------------------------------------------------ loaders
def test_panda_sim_collection(tmp_path):
    bags = load_panda_sim(_cfg(tmp_path))
    p = PandaSimParams()
    assert len(bags) == 24 and bags.dim == p.dim
    assert bags.features.dtype == np.float16 and bags.features.shape == (bags.offsets[-1], 1024)
    assert set(bags.fine_labels.tolist()) == set(range(6))  # every class present even at scale 0.1
    assert bags.lengths.min() >= p.bag_min and bags.lengths.max() <= p.bag_max
    assert set(bags.sites) == {"karolinska", "radboud"}
    assert bags.case_ids == bags.slide_ids  # PANDA has no patient ids
    assert bags.hierarchy is PANDA_HIERARCHY
    batch = pad_batch(bags, [0, 1, 2])
    assert batch.x.dtype.is_floating_point and batch.x.shape[2] == 1024
    np.testing.assert_allclose(batch.x[0, : bags.lengths[0]].numpy(), bags.bag(0).astype(np.float32))


def test_bracs_sim_collection(tmp_path):
    bags = load_bracs_sim(_cfg(tmp_path, "bracs-sim"))
    assert len(bags) == 55 and set(bags.fine_labels.tolist()) == set(range(7))
    assert len(set(bags.case_ids)) == 19 < len(bags)  # multi-slide patients: k-fold must group them
    assert bags.sites is None and bags.hierarchy is BRACS_HIERARCHY
    # Slides of one patient have similar severities (they are cut from a noisy severity ordering).
    by_case = defaultdict(list)
    for c, y in zip(bags.case_ids, bags.fine_labels, strict=True):
        by_case[c].append(y)
    spread = np.mean([np.ptp(v) for v in by_case.values() if len(v) > 1])
    assert spread < 3.0


def test_hierarchies():
    assert PANDA_HIERARCHY.fine == tuple(f"ISUP {g}" for g in range(6))
    assert PANDA_HIERARCHY.coarse == ("benign", "low-grade", "high-grade") and PANDA_HIERARCHY.ordinal
    assert PANDA_HIERARCHY.parent == (0, 1, 1, 2, 2, 2)
    assert BRACS_HIERARCHY.fine == ("N", "PB", "UDH", "FEA", "ADH", "DCIS", "IC")
    assert BRACS_HIERARCHY.coarse == ("benign", "atypical", "malignant") and not BRACS_HIERARCHY.ordinal
    assert BRACS_HIERARCHY.parent == (0, 0, 0, 1, 1, 2, 2)


def test_deterministic_per_seed(tmp_path):
    a = load_panda_sim(_cfg(tmp_path / "a", seed=7))
    b = load_panda_sim(_cfg(tmp_path / "b", seed=7))
    c = load_panda_sim(_cfg(tmp_path / "c", seed=8))
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.fine_labels, b.fine_labels)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert not np.allclose(a.bag(0)[:8].astype(np.float32), c.bag(0)[:8].astype(np.float32))  # bags hold ≥ 8


def test_cache_is_reused(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path)
    first = load_panda_sim(cfg)
    files = sorted(sim.sim_cache_dir(cfg).iterdir())
    assert [f.name for f in files] == ["features.npy", "meta.json", "offsets.npy", "patterns.npy"]
    mtimes = [f.stat().st_mtime_ns for f in files]

    def boom(*args, **kwargs):
        raise AssertionError("regenerated although the cache exists")

    monkeypatch.setattr(sim, "write_dataset", boom)
    second = load_panda_sim(cfg)
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    np.testing.assert_array_equal(first.features, second.features)
    assert first.fingerprint == second.fingerprint


def test_corrupt_cache_is_regenerated(tmp_path):
    cfg = _cfg(tmp_path)
    first = np.array(load_panda_sim(cfg).features)
    path = sim.sim_cache_dir(cfg) / "features.npy"
    with open(path, "r+b") as fh:  # truncate: a half-written file
        fh.truncate(path.stat().st_size // 2)
    again = load_panda_sim(cfg)
    np.testing.assert_array_equal(first, again.features)


def test_crash_leaves_no_cache(tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(_sim_store, "write_features", crash)
    with pytest.raises(RuntimeError, match="disk on fire"):
        load_panda_sim(_cfg(tmp_path))
    assert list((tmp_path / "sim").iterdir()) == []  # neither the final nor the temporary directory


def test_info_is_flat_and_records_class_counts(tmp_path):
    bags = load_panda_sim(_cfg(tmp_path))
    info = bags.info
    assert all(isinstance(v, str | int | float | bool) for v in info.values())
    json.dumps(info)
    assert info["seed"] == 0 and info["generator_version"] == sim.GENERATOR_VERSION
    assert json.loads(info["fine_counts"]) == np.bincount(bags.fine_labels, minlength=6).tolist()
    assert info["n_instances"] == int(bags.offsets[-1]) and info["label_noise"] == 0.06


def test_scale(tmp_path):
    assert PandaSimParams().scaled(0.25).n_slides == 60
    assert len(load_panda_sim(_cfg(tmp_path, scale=0.25))) == 60
    big = PandaSimParams().scaled(4.0)  # beyond 1, bags grow with √scale
    assert (big.n_slides, big.bag_median, big.bag_max) == (960, 20.0, 192)
    assert PandaSimParams().scaled(44.233).n_slides == 10616
    small = BracsSimParams().scaled(0.5)
    assert (small.n_slides, small.n_patients, small.bag_median) == (274, 94, 24.0)


def test_scale_too_small_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"data.scale=0.01 gives 2 slides for panda-sim.*--scale ≥ 0.075"):
        load_panda_sim(_cfg(tmp_path, scale=0.01))


@pytest.mark.parametrize(
    ("name", "params", "plan"),
    [("panda-sim", PandaSimParams(), panda_plan), ("bracs-sim", BracsSimParams(), bracs_plan)],
)
def test_registered_size_matches_the_plan(name, params, plan):
    info = DATASETS.get(name).info
    lengths = plan(params, 0).lengths
    assert f"{params.n_slides} slides" in info.size and f"{int(lengths.sum()):,} instances" in info.size
    assert not info.needs_data_dir and info.hierarchy is not None


def test_rng_streams_are_independent_of_slide_count():
    # A slide's features depend on (seed, index, plan) only, not on how many slides follow it.
    a = _sim_core.rng_for(0, _sim_core.FEATURE_STREAM, 5).standard_normal(4)
    b = _sim_core.rng_for(0, _sim_core.FEATURE_STREAM, 5).standard_normal(4)
    c = _sim_core.rng_for(0, _sim_core.FEATURE_STREAM, 6).standard_normal(4)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
