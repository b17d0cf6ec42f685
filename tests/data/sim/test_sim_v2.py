"""panda-sim v2 / bracs-sim v2 feature model and the -iso stress sets (docs/datasets.md)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from benchmark.core.config import DataConfig
from benchmark.core.errors import ConfigError
from benchmark.data import load_dataset
from benchmark.data.sim.datasets import PandaSimParams, generate_simulated, instance_patterns
from benchmark.data.sim.embed import EmbeddingModel, morphology_basis
from benchmark.data.stats import feature_stats


def _load(tmp_path, name, scale=0.1, seed=0):
    return load_dataset(DataConfig(name=name, scale=scale, seed=seed, cache_dir=str(tmp_path)))


def _sha(array) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


@pytest.mark.parametrize("name", ["panda-sim", "bracs-sim"])
def test_v2_features_are_positive_finite_and_deterministic(tmp_path, name):
    a = _load(tmp_path / "a", name)
    b = _load(tmp_path / "b", name)
    x = np.asarray(a.features, dtype=np.float32)
    assert np.isfinite(x).all()
    assert (x > 0).all()  # softplus: no negative and no exactly-zero entry
    assert np.array_equal(np.asarray(a.features), np.asarray(b.features))  # regenerated from scratch
    assert a.fingerprint == b.fingerprint
    assert a.info["feature_model"] == "v2" and "embedding.morph_alpha" in a.info


@pytest.mark.parametrize(("v2", "iso"), [("panda-sim", "panda-sim-iso"), ("bracs-sim", "bracs-sim-iso")])
def test_v2_and_iso_share_slides_labels_cases_and_sites(tmp_path, v2, iso):
    a, b = _load(tmp_path, v2), _load(tmp_path, iso)
    assert a.slide_ids == b.slide_ids and a.case_ids == b.case_ids and a.sites == b.sites
    assert np.array_equal(a.fine_labels, b.fine_labels) and np.array_equal(a.offsets, b.offsets)
    assert a.table().equals(b.table())  # so the split files (and their digests) are identical too
    assert a.fingerprint != b.fingerprint
    assert not np.array_equal(np.asarray(a.features), np.asarray(b.features))


@pytest.mark.parametrize(
    ("name", "digest"),
    # sha256 of the features of the v1 generator before v2 existed (commit 6a43ab9, scale 0.1, seed 0):
    # the -iso sets must stay bit-identical to it.
    [("panda-sim-iso", "1098a3814626a182"), ("bracs-sim-iso", "e3ddbb8d512f3eb4")],
)
def test_iso_sets_reproduce_the_v1_generator_bit_for_bit(tmp_path, name, digest):
    assert _sha(_load(tmp_path, name).features) == digest


def test_v2_statistics_meet_the_calibration_targets(tmp_path):
    """The default panda-sim at scale 1 (docs/datasets.md, calibration table)."""
    cfg = DataConfig(name="panda-sim", cache_dir=str(tmp_path))
    s = feature_stats(load_dataset(cfg), instance_labels=instance_patterns(cfg))
    assert s.frac_negative == 0.0
    assert 10 <= s.effective_rank <= 40
    assert s.top10_share >= 0.40
    assert 0.03 <= s.pattern_variance_share <= 0.08


def test_iso_statistics_are_the_documented_stress_set(tmp_path):
    cfg = DataConfig(name="panda-sim-iso", cache_dir=str(tmp_path))
    s = feature_stats(load_dataset(cfg), instance_labels=instance_patterns(cfg))
    assert s.effective_rank == pytest.approx(376, abs=1)
    assert s.pattern_variance_share == pytest.approx(0.010, abs=0.001)
    assert s.frac_negative == pytest.approx(0.498, abs=0.005)


def test_signal_gain_raises_the_pattern_share_without_touching_labels(tmp_path):
    params = PandaSimParams().scaled(0.2)
    weak = generate_simulated(
        "panda-sim", params, 0, tmp_path / "w", embedding=EmbeddingModel(signal_gain=0.5)
    )
    strong = generate_simulated(
        "panda-sim", params, 0, tmp_path / "s", embedding=EmbeddingModel(signal_gain=2.0)
    )
    patterns = np.load(tmp_path / "w" / "patterns.npy")
    assert np.array_equal(patterns, np.load(tmp_path / "s" / "patterns.npy"))
    assert np.array_equal(weak.fine_labels, strong.fine_labels)
    share = [feature_stats(b, instance_labels=patterns).pattern_variance_share for b in (weak, strong)]
    assert share[0] < share[1]


def test_embedding_only_for_v2_sets(tmp_path):
    with pytest.raises(ConfigError, match="v1"):
        generate_simulated(
            "panda-sim-iso", PandaSimParams().scaled(0.1), 0, tmp_path, embedding=EmbeddingModel()
        )


def test_morphology_basis_is_orthonormal_and_orthogonal_to_the_signal():
    rng = np.random.default_rng(0)
    occupied, _ = np.linalg.qr(rng.standard_normal((64, 10)))
    m = morphology_basis(np.random.default_rng(1), occupied, 20).astype(np.float64)
    np.testing.assert_allclose(m.T @ m, np.eye(20), atol=1e-5)
    np.testing.assert_allclose(occupied.T @ m, 0.0, atol=1e-5)
    with pytest.raises(ConfigError, match="does not fit"):
        morphology_basis(rng, occupied, 60)
