"""DTFD-MIL: parameter counts (baselines.md §1), pseudo-bags, distillation, both tiers, padding and determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from baselines.dtfd import DTFD, DTFDConfig, group_of_rank, pseudo_bag_ids
from benchmark.core.contract import Targets
from benchmark.core.errors import ConfigError
from benchmark.core.hierarchy import Hierarchy
from benchmark.models import build_model, default_loss_terms, model_spec, resolve_model_params

D, C = 12, 3


def flat(c: int) -> Hierarchy:
    return Hierarchy.from_groups({"all": [f"c{i}" for i in range(c)]})


def make(seed: int = 0, **kw) -> DTFD:
    torch.manual_seed(seed)
    return DTFD(DTFDConfig(hidden_dim=16, attention_dim=8, **kw), in_dim=D, hierarchy=flat(C))


def ragged(lengths, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x, mask = (
        torch.zeros(len(lengths), max(lengths), D),
        torch.zeros(len(lengths), max(lengths), dtype=torch.bool),
    )
    for b, n in enumerate(lengths):
        x[b, :n], mask[b, :n] = torch.randn(n, D, generator=g), True
    return x, mask


@pytest.mark.parametrize(
    ("d", "c", "expected"),
    [(1024, 2, 789_254), (1536, 2, 1_051_398), (1024, 6, 793_358), (1536, 7, 1_056_528)],
)
def test_parameter_counts_match_baselines_md(d, c, expected):
    model = build_model("dtfd", resolve_model_params("dtfd"), in_dim=d, hierarchy=flat(c))
    assert sum(p.numel() for p in model.parameters()) == expected
    assert expected == 512 * d + 2 * 131_457 + 2 * (512 * c + c)


@pytest.mark.parametrize("m", [1, 3, 4, 5])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 10, 13])
def test_group_sizes_follow_array_split(n, m):
    groups = group_of_rank(torch.arange(n).unsqueeze(0), torch.tensor([[n]]), m)[0]
    expected = [len(c) for c in np.array_split(np.arange(n), m) if len(c)]
    assert torch.bincount(groups).tolist() == expected  # contiguous ranks, every chunk non-empty


@pytest.mark.parametrize("training", [True, False])
def test_pseudo_bags_cover_every_real_instance_exactly_once(training):
    model = make().train(training)
    x, mask = ragged((1, 3, 4, 9, 13))
    torch.manual_seed(5)
    ids = model._pseudo_bags(x, mask)
    assert torch.all(ids[~mask] == -1)
    for b, n in enumerate(mask.sum(1).tolist()):
        counts = torch.bincount(ids[b, :n], minlength=4)
        expected = sorted(len(c) for c in np.array_split(np.arange(n), 4) if len(c))
        assert (
            sorted(counts[counts > 0].tolist()) == expected
        )  # one group per real instance, near-equal sizes
        assert counts.sum() == n


def test_training_split_is_seeded_random_and_independent_of_padding():
    model = make().train()
    x, mask = ragged((10, 13))
    draws = []
    for seed in (1, 1, 2):
        torch.manual_seed(seed)
        draws.append(model._pseudo_bags(x, mask))
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])
    torch.manual_seed(1)  # the first bag alone, unpadded, gets the same pseudo-bags as inside the batch
    assert torch.equal(model._pseudo_bags(x[:1, :10], mask[:1, :10])[0], draws[0][0, :10])


def test_eval_split_is_deterministic_padding_and_order_invariant():
    model = make().eval()
    x, mask = ragged((9, 13))
    ids = model._pseudo_bags(x, mask)
    assert torch.equal(ids, model._pseudo_bags(x, mask))
    assert torch.equal(model._pseudo_bags(x[:1, :9], mask[:1, :9])[0], ids[0, :9])
    perm = torch.randperm(13, generator=torch.Generator().manual_seed(0))
    assert torch.equal(
        model._pseudo_bags(x[1:, perm], mask[1:, perm])[0], ids[1, perm]
    )  # ids follow instances
    other = make(seed=1).eval()  # the hash multipliers follow the run seed
    assert not torch.equal(other._pseudo_bags(x, mask), ids)


def _tier2_input_shape(model: DTFD, x, mask, targets=None):
    seen = {}
    handle = model.attention2.register_forward_hook(
        lambda mod, inp, out: seen.update(shape=tuple(inp[0].shape))
    )
    out = model(x, mask, targets)
    handle.remove()
    return seen["shape"], out


@pytest.mark.parametrize(
    ("distill", "k", "per_group"), [("afs", 1, 1), ("maxs", 2, 2), ("maxmins", 1, 2), ("maxmins", 2, 4)]
)
def test_distillation_shapes(distill, k, per_group):
    model = make(distill=distill, instances_per_group=k).eval()
    x, mask = ragged((3, 11))
    shape, out = _tier2_input_shape(model, x, mask)
    assert shape == (2, 4 * per_group, 16)
    assert out.logits.shape == (2, C) and out.attention.shape == (2, 1, 11)
    assert torch.all(out.attention[~mask.unsqueeze(1)] == 0)
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(2, 1))
    alone = model(x[:1, :3], mask[:1, :3]).logits[0]
    torch.testing.assert_close(out.logits[0], alone, atol=1e-5, rtol=1e-5)


def _reference_eval(model: DTFD, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """One unpadded bag (N, d), chunk by chunk as in §6.2 (ranking by the predicted class), -> (C,) logits."""
    h = model.reduce(x)
    distilled = []
    for g in range(int(ids.max()) + 1):
        hg = h[ids == g]
        a = torch.softmax(model.attention1(hg).squeeze(-1), 0)
        f = (a.unsqueeze(-1) * hg).sum(0)
        if model.config.distill == "afs":
            distilled.append(f.unsqueeze(0))
            continue
        cls = model.classifier1(f).argmax()
        p = torch.softmax((a.unsqueeze(-1) * hg) @ model.classifier1.weight.T, dim=1)[:, cls]
        order = torch.argsort(p, descending=True, stable=True)
        k = model.config.instances_per_group
        distilled += [hg[order[:k]], hg[order[-k:]]]
    feats = torch.cat(distilled)
    a2 = torch.softmax(model.attention2(feats).squeeze(-1), 0)
    return model.classifier2((a2.unsqueeze(-1) * feats).sum(0))


@pytest.mark.parametrize("distill", ["afs", "maxmins"])
def test_matches_per_chunk_reference_computation(distill):
    model = make(distill=distill).eval()
    x, mask = ragged((10,), seed=3)
    with torch.no_grad():
        out = model(x, mask)
        ids = model._pseudo_bags(x, mask)[0]
        torch.testing.assert_close(out.logits[0], _reference_eval(model, x[0], ids), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("distill", ["afs", "maxs", "maxmins"])
def test_single_instance_bag(distill):
    model = make(distill=distill).train()
    x, mask = ragged((1,))
    out = model(x, mask, Targets(fine=torch.tensor([1])))
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.aux_losses["tier1_ce"])
    model.eval()
    torch.testing.assert_close(model(x, mask).attention, torch.ones(1, 1, 1))


def test_tier1_loss_is_mean_ce_over_pseudo_bags():
    model = make().train()
    x, mask = ragged((7,), seed=2)
    fine = torch.tensor([2])
    torch.manual_seed(9)
    ids = model._pseudo_bags(x, mask)[0]
    torch.manual_seed(9)
    out = model(x, mask, Targets(fine=fine))
    h = model.reduce(x[0])
    preds = []
    for g in range(4):
        a = torch.softmax(model.attention1(h[ids == g]).squeeze(-1), 0)
        preds.append(model.classifier1((a.unsqueeze(-1) * h[ids == g]).sum(0)))
    expected = F.cross_entropy(torch.stack(preds), fine.repeat(4))
    torch.testing.assert_close(out.aux_losses["tier1_ce"], expected)


@pytest.mark.parametrize("distill", ["afs", "maxs", "maxmins"])
@pytest.mark.parametrize("detach", [True, False])
def test_two_training_steps_through_both_tiers(distill, detach):
    model = make(distill=distill, detach_tier2=detach).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    fine = torch.tensor([0, 2])
    for step in range(2):
        x, mask = ragged((5, 8), seed=step)
        out = model(x, mask, Targets(fine=fine))
        opt.zero_grad()
        (F.cross_entropy(out.logits, fine) + out.aux_losses["tier1_ce"]).backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
        opt.step()
    # With detached distilled features the slide loss (L1) trains tier 2 only.
    model.zero_grad()
    out = model(x, mask, Targets(fine=fine))
    F.cross_entropy(out.logits, fine).backward()
    reached_tier1 = model.reduce[0].weight.grad is not None and bool(
        model.reduce[0].weight.grad.abs().sum() > 0
    )
    assert reached_tier1 is (not detach)


def test_permutation_invariance_with_one_pseudo_bag():
    """§7.2: with numGroup = 1 DTFD is exactly permutation-invariant."""
    model = make(n_pseudo_bags=1, distill="maxmins").eval()
    x, mask = ragged((6, 6))
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(
        model(x, mask).logits, model(x[:, perm], mask[:, perm]).logits, atol=1e-5, rtol=1e-5
    )


def test_defaults_and_bad_config():
    assert [(t.name, t.weight) for t in default_loss_terms("dtfd", resolve_model_params("dtfd"))] == [
        ("fine_ce", 1.0),
        ("tier1_ce", 1.0),
    ]
    assert model_spec("dtfd").train_defaults == {"lr": 1e-4, "weight_decay": 1e-4, "optimizer": "adam"}
    assert (
        resolve_model_params("dtfd")["n_pseudo_bags"] == 4
        and resolve_model_params("dtfd")["distill"] == "afs"
    )
    with pytest.raises(ConfigError, match="model.distill='maxx' is not a distillation"):
        DTFDConfig(distill="maxx")
    with pytest.raises(ConfigError, match="n_pseudo_bags must be ≥ 1"):
        DTFDConfig(n_pseudo_bags=0)


def test_pseudo_bag_ids_marks_padding():
    mask = torch.tensor([[True, True, False]])
    assert pseudo_bag_ids(torch.tensor([[1, 0, 2]]), mask, 2).tolist() == [[1, 0, -1]]
