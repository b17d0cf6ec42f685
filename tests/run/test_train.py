"""Trainer: batching order, instance cap, validation-only selection, test used once, loss composition."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import benchmark.run.train as train_mod
from benchmark.core.config import LossTerm, RunConfig, TrainConfig
from benchmark.core.contract import MILOutput
from benchmark.core.errors import TrainingError
from benchmark.core.hierarchy import Hierarchy
from benchmark.data.bags import BagCollection, pad_batch
from benchmark.models import build_model, resolve_model_params
from benchmark.run.inference import predict
from benchmark.run.loss_weighting import compose_loss
from benchmark.run.setup import fold_seed
from benchmark.run.train import train_fold

HIER = Hierarchy.from_groups({"neg": ["a"], "pos": ["b", "c"]})


def tiny_bags(n: int = 36, dim: int = 8, seed: int = 0) -> BagCollection:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    lengths = rng.integers(1, 12, size=n)
    feats = [rng.normal(size=(k, dim)).astype(np.float32) + labels[i] for i, k in enumerate(lengths)]
    return BagCollection(
        name="tiny",
        slide_ids=[f"s{i}" for i in range(n)],
        case_ids=[f"s{i}" for i in range(n)],
        fine_labels=labels,
        features=np.concatenate(feats).astype(np.float32),
        offsets=np.concatenate([[0], np.cumsum(lengths)]),
        hierarchy=HIER,
    )


PARTS = {"train": np.arange(0, 24), "val": np.arange(24, 30), "test": np.arange(30, 36)}


def config(**train) -> RunConfig:
    return RunConfig(
        model="abmil",
        model_params=resolve_model_params("abmil"),
        train=TrainConfig(**{"epochs": 4, "batch_size": 5, "eval_batch_size": 3, "device": "cpu", **train}),
    )


def test_predict_returns_rows_in_caller_order_equal_to_per_bag_forward():
    bags = tiny_bags()
    torch.manual_seed(0)
    model = build_model("abmil", resolve_model_params("abmil"), in_dim=8, hierarchy=HIER).eval()
    index = np.array([7, 3, 30, 1, 12, 5])
    preds = predict(model, bags, index, batch_size=4, device=torch.device("cpu"), amp=False)
    for row, i in enumerate(index):
        x = torch.from_numpy(np.asarray(bags.bag(i)))[None]
        alone = (
            torch.softmax(model(x, torch.ones(x.shape[:2], dtype=torch.bool)).logits, -1)[0].detach().numpy()
        )
        np.testing.assert_allclose(preds.fine_probs[row], alone, atol=1e-5)


def test_instance_cap_subsamples_without_replacement_and_keeps_order():
    bags = tiny_bags()
    i = int(np.argmax(bags.lengths))
    batch = pad_batch(bags, [i], max_instances=3, rng=np.random.default_rng(0))
    assert batch.x.shape[1] == 3 and batch.mask.all()
    full = np.asarray(bags.bag(i))
    rows = [int(np.flatnonzero((full == r.numpy()).all(1))[0]) for r in batch.x[0]]
    assert rows == sorted(set(rows))


def test_selection_uses_validation_and_test_is_evaluated_once(monkeypatch):
    bags = tiny_bags()
    seen: list[np.ndarray] = []
    real_pad = train_mod.pad_batch

    def spy(b, index, **kw):
        if "rng" in kw:  # the training path; evaluation batches pass no rng
            seen.append(np.asarray(index))
        return real_pad(b, index, **kw)

    monkeypatch.setattr(train_mod, "pad_batch", spy)
    calls: list[np.ndarray] = []
    real_predict = train_mod.predict

    def spy_predict(model, b, index, **kw):
        calls.append(np.asarray(index))
        return real_predict(model, b, index, **kw)

    monkeypatch.setattr(train_mod, "predict", spy_predict)
    out = train_fold(config(patience=0), bags, PARTS, seed=1)
    # Training batches (with the instance-cap kwarg path) never contain a val or test slide.
    trained = np.concatenate(seen)
    assert set(trained.tolist()) <= set(PARTS["train"].tolist())
    # One validation pass per epoch, then exactly one test pass, last.
    assert [set(c.tolist()) for c in calls[:-1]] == [set(PARTS["val"].tolist())] * out.epochs_run
    assert set(calls[-1].tolist()) == set(PARTS["test"].tolist())
    aucs = [h["val.fine.auc"] for h in out.history]
    assert out.best_epoch == int(np.argmax(aucs))  # first maximum (ties broken by val CE)
    assert out.test.levels["fine"].overall["n"] == len(PARTS["test"])


def test_same_seed_same_result_other_seed_differs():
    bags = tiny_bags()
    a = train_fold(config(), bags, PARTS, seed=5)
    b = train_fold(config(), bags, PARTS, seed=5)
    c = train_fold(config(), bags, PARTS, seed=6)
    np.testing.assert_array_equal(a.test_predictions.fine_probs, b.test_predictions.fine_probs)
    assert not np.array_equal(a.test_predictions.fine_probs, c.test_predictions.fine_probs)


def test_fold_seeds_are_stable_and_distinct():
    seeds = [fold_seed(0, f) for f in range(5)]
    assert len(set(seeds)) == 5 and seeds == [fold_seed(0, f) for f in range(5)]
    assert fold_seed(1, 0) != seeds[0]


def test_compose_loss_weights_schedules_and_rejects_stray_terms():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    fine, coarse = torch.tensor([0, 1]), torch.tensor([0, 1])
    out = MILOutput(logits=logits, coarse_logits=torch.zeros(2, 2), aux_losses={"extra": torch.tensor(3.0)})
    terms = (
        LossTerm("fine_ce", 0.7),
        LossTerm("coarse_ce", schedule="linear", complement=True),
        LossTerm("extra", 0.3),
    )
    total, parts = compose_loss(out, fine, coarse, terms, epoch=5, total_epochs=10)
    ce = torch.nn.functional.cross_entropy(logits, fine).item()
    assert parts == pytest.approx({"fine_ce": ce, "coarse_ce": np.log(2), "extra": 3.0})
    assert total.item() == pytest.approx(0.7 * ce + 0.5 * np.log(2) + 0.3 * 3.0)
    with pytest.raises(RuntimeError, match="no configured weight"):
        compose_loss(out, fine, coarse, (LossTerm("fine_ce"),), epoch=0, total_epochs=1)


def test_standardisation_uses_training_instances_only_and_keeps_padding_zero():
    from benchmark.data.bags import instance_statistics

    bags = tiny_bags()
    mean, std = instance_statistics(bags, PARTS["train"])
    rows = np.concatenate([np.asarray(bags.bag(i)) for i in PARTS["train"]]).astype(np.float64)
    np.testing.assert_allclose(mean, rows.mean(0), atol=1e-10)
    np.testing.assert_allclose(std, rows.std(0), atol=1e-10)
    batch = pad_batch(bags, [0, 1], standardize=(mean, std))
    assert torch.all(batch.x[~batch.mask] == 0)
    n0 = int(bags.lengths[0])
    np.testing.assert_allclose(batch.x[0, :n0].numpy(), (np.asarray(bags.bag(0)) - mean) / std, atol=1e-5)
    out = train_fold(config(standardize=True), bags, PARTS, seed=1)
    np.testing.assert_allclose(out.standardize[0], mean)


def test_training_batches_cover_each_slide_once_and_bucket_by_length():
    from benchmark.run.setup import training_batches

    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, size=100)
    index = np.arange(100)
    for pool in (0, 8):
        batches = training_batches(lengths, index, 10, pool, np.random.default_rng(1))
        assert sorted(np.concatenate(batches).tolist()) == index.tolist()
        assert all(len(b) <= 10 for b in batches)
    padded = {
        pool: sum(
            len(b) * lengths[b].max()
            for b in training_batches(lengths, index, 10, pool, np.random.default_rng(1))
        )
        for pool in (0, 8)
    }
    assert padded[8] < 0.7 * padded[0]  # bucketing removes most padding
    a = training_batches(lengths, index, 10, 8, np.random.default_rng(1))
    b = training_batches(lengths, index, 10, 8, np.random.default_rng(2))
    assert [x.tolist() for x in a] != [x.tolist() for x in b]


@pytest.mark.parametrize("pool", [0, 8])
def test_an_instance_cap_cuts_large_batches_and_nothing_else(pool):
    from benchmark.run.setup import training_batches

    lengths = np.random.default_rng(0).integers(1, 300, size=100)
    index = np.arange(100)
    plain = training_batches(lengths, index, 16, pool, np.random.default_rng(1))
    capped = training_batches(lengths, index, 16, pool, np.random.default_rng(1), max_batch_instances=1000)
    assert np.array_equal(np.concatenate(plain), np.concatenate(capped))  # same slides, same order
    assert len(capped) > len(plain)
    assert all(len(b) == 1 or len(b) * lengths[b].max() <= 1000 for b in capped)
    # The per-bag instance cap shrinks the padded length the batch cap sees.
    subsampled = training_batches(
        lengths, index, 16, pool, np.random.default_rng(1), max_batch_instances=1000, max_instances=50
    )
    assert all(len(b) * min(lengths[b].max(), 50) <= 1000 for b in subsampled)
    huge = training_batches(lengths, index, 16, pool, np.random.default_rng(1), max_batch_instances=10**9)
    assert [b.tolist() for b in huge] == [b.tolist() for b in plain]


def test_a_capped_run_takes_more_steps_and_stays_finite():
    plain = train_fold(config(), tiny_bags(), PARTS, seed=1)
    capped = train_fold(config(max_batch_instances=8), tiny_bags(), PARTS, seed=1)
    assert capped.steps > plain.steps
    assert np.isfinite(capped.test_predictions.fine_probs).all()


def test_a_diverged_run_is_a_clear_training_error_not_a_type_error():
    """Infinite features make every forward pass NaN (inf − inf in the first layer): no epoch can be selected."""
    bags = tiny_bags()
    bags.features = np.full_like(bags.features, np.inf)
    with pytest.raises(
        TrainingError, match=r"abmil: validation predictions are NaN/inf at epoch 0.*lower --lr"
    ):
        train_fold(config(), bags, PARTS, seed=0)


def test_compiled_training_matches_eager_up_to_rounding_without_dropout():
    """Without dropout (whose masks compiled kernels draw from another random stream) a compiled model
    learns the same thing as the eager one; checkpoints keep their parameter names."""
    params = {**resolve_model_params("abmil"), "dropout": 0.0}
    runs = [
        train_fold(
            dataclasses.replace(config(epochs=2, compile=flag), model_params=params),
            tiny_bags(),
            PARTS,
            seed=3,
        )
        for flag in (False, True)
    ]
    np.testing.assert_allclose(
        runs[1].test_predictions.fine_probs, runs[0].test_predictions.fine_probs, atol=1e-4
    )
    assert not any(k.startswith("_orig_mod") for k in runs[1].state_dict)
