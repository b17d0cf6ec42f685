"""The HMIL model: parameter counts, attention, batching, gradients, aux losses (hmil-method.md §4, §17)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from benchmark.core.contract import Targets
from benchmark.core.hierarchy import Hierarchy
from benchmark.models import build_model, resolve_model_params
from benchmark.run.loss_weighting import compose_loss
from hmil.losses import ham_loss, hba_loss, supcon_loss
from hmil.model import HMIL, HMILCodeConfig, HMILConfig, split_attention
from hmil.presets import LADDER, loss_terms
from tests.hmil.test_losses import naive_supcon

HIER = Hierarchy.from_groups({"a": ["f0", "f1"], "b": ["f2", "f3", "f4"]})  # K_c = 2, K_f = 5
D = 12
SMALL = {
    "hidden_dim": 16,
    "coarse_dim": 24,
    "fine_dim": 8,
    "coarse_attention_dim": 12,
    "fine_attention_dim": 6,
}


def small(config: type[HMILConfig] = HMILConfig, seed: int = 0, **overrides) -> HMIL:
    torch.manual_seed(seed)
    return HMIL(config(**SMALL, **overrides), in_dim=D, hierarchy=HIER)


def ragged(lengths, seed: int = 0, pad_value: float = 0.0):
    """Padded batch whose padded slots hold ``pad_value`` noise (padding must never matter)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), max(lengths), D, generator=g) * pad_value
    mask = torch.zeros(len(lengths), max(lengths), dtype=torch.bool)
    for b, n in enumerate(lengths):
        x[b, :n] = torch.randn(n, D, generator=g)
        mask[b, :n] = True
    return x, mask


def targets(fine, progress=None) -> Targets:
    fine = torch.as_tensor(fine)
    return Targets(fine=fine, coarse=torch.as_tensor(HIER.coarse_of(fine.numpy())), progress=progress)


@pytest.mark.parametrize(
    ("d", "groups", "expected"),
    [
        (1024, [3, 2, 2], 1_348_172),  # BRACS
        (1024, [1, 2, 3], 1_348_107),  # PANDA
        (1024, [1, 5], 1_347_850),  # CCC
        (1536, [3, 2, 2], 1_479_244),
    ],
)
def test_parameter_counts_match_hmil_method_md(d, groups, expected):
    hier = Hierarchy.from_groups({f"c{k}": [f"f{k}_{i}" for i in range(n)] for k, n in enumerate(groups)})
    for name in ("hmil", "hmil-code"):
        model = build_model(name, resolve_model_params(name), in_dim=d, hierarchy=hier)
        n_params = sum(p.numel() for p in model.parameters())
        assert n_params == expected == 256 * d + 1_084_802 + 257 * hier.n_coarse + 65 * hier.n_fine


def test_kaiming_normal_init_with_zero_biases():
    torch.manual_seed(0)
    model = HMIL(HMILConfig(), in_dim=1024, hierarchy=HIER)
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(layers) == 11
    assert all(torch.all(layer.bias == 0) for layer in layers)
    w = model.embed.fine.weight  # 256 × 1024
    assert w.std().item() == pytest.approx(math.sqrt(2 / 1024), rel=0.02)


def test_outputs_attention_layout_and_embeddings():
    model = small().eval()
    x, mask = ragged((3, 7), pad_value=5.0)
    out = model(x, mask)
    assert out.logits.shape == (2, 5) and out.coarse_logits.shape == (2, 2)
    assert out.attention.shape == (2, 5 + 2, 7)
    fine, coarse = split_attention(out.attention, HIER.n_fine)
    assert fine.shape == (2, 5, 7) and coarse.shape == (2, 2, 7)
    sums = out.attention.sum(-1)
    torch.testing.assert_close(sums, torch.ones_like(sums))  # every head sums to 1 over real instances
    assert torch.all(out.attention[0, :, 3:] == 0)  # exactly 0 on padding
    assert out.embeddings.shape == (2, 5, 8)
    torch.testing.assert_close(out.embeddings.norm(dim=-1), torch.ones(2, 5))
    assert out.aux_losses == {}


def test_batched_forward_equals_per_bag_loop():
    lengths = (1, 3, 7, 5, 2)
    fine = [0, 3, 0, 4, 1]
    for config in (HMILConfig, HMILCodeConfig):
        model = small(config).train()
        x, mask = ragged(lengths, seed=1, pad_value=3.0)
        batched = model(x, mask, targets(fine, progress=0.3))
        alone = [
            model(x[b : b + 1, :n], mask[b : b + 1, :n], targets(fine[b : b + 1], 0.3))
            for b, n in enumerate(lengths)
        ]
        for b, (n, out) in enumerate(zip(lengths, alone, strict=True)):
            torch.testing.assert_close(batched.logits[b], out.logits[0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(batched.coarse_logits[b], out.coarse_logits[0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(batched.attention[b, :, :n], out.attention[0], atol=1e-5, rtol=1e-5)
            assert torch.all(batched.attention[b, :, n:] == 0)
            torch.testing.assert_close(batched.embeddings[b], out.embeddings[0], atol=1e-5, rtol=1e-5)
        for name in ("ham", "hba"):  # per-bag means, then the mean over bags
            expected = torch.stack([o.aux_losses[name] for o in alone]).mean()
            torch.testing.assert_close(batched.aux_losses[name], expected, atol=1e-5, rtol=1e-5)
        stacked = torch.cat([o.embeddings for o in alone])
        c = model.config
        tau = 0.1 if c.scl_tau_mode == "fixed" else 0.1 + 0.9 * (1 + math.cos(2 * math.pi * 0.3)) / 2
        naive = naive_supcon(stacked, fine, tau, c.scl_tau_base, divide_by_batch=c.scl_divide_by_batch)
        assert batched.aux_losses["supcon"].item() == pytest.approx(naive, rel=1e-5)


def test_aux_losses_are_the_loss_functions_applied_to_the_outputs():
    model = small(HMILCodeConfig).train()
    x, mask = ragged((4, 6), seed=2)
    t = targets([2, 4], progress=0.5)
    out = model(x, mask, t)
    fine_att, coarse_att = split_attention(out.attention, HIER.n_fine)
    torch.testing.assert_close(out.aux_losses["ham"], ham_loss(coarse_att, fine_att, model.roll_up, mask))
    torch.testing.assert_close(
        out.aux_losses["hba"], hba_loss(out.logits, t.coarse, model.roll_up, form="ce_on_probs")
    )
    expected = supcon_loss(
        out.embeddings, t.fine, tau=0.1, tau_base=0.1, divide_by_batch=True
    )  # τ(E/2) = 0.1
    torch.testing.assert_close(out.aux_losses["supcon"], expected)
    no_coarse = model(x, mask, Targets(fine=t.fine, progress=0.5))  # coarse labels derived from the tree
    torch.testing.assert_close(no_coarse.aux_losses["hba"], out.aux_losses["hba"])


def test_padding_and_permutation_invariance_at_default_width():
    torch.manual_seed(0)
    model = build_model("hmil", resolve_model_params("hmil"), in_dim=D, hierarchy=HIER).eval()
    x, mask = ragged((4, 6), seed=3, pad_value=10.0)
    padded = model(x, mask)
    alone = model(x[:1, :4], mask[:1, :4])
    torch.testing.assert_close(padded.logits[0], alone.logits[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(padded.embeddings[0], alone.embeddings[0], atol=1e-5, rtol=1e-5)
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(0))
    permuted = model(x[1:, perm], mask[1:, perm])
    torch.testing.assert_close(permuted.logits[0], padded.logits[1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(permuted.attention[0], padded.attention[1, :, perm], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ["hmil", "hmil-code"])
def test_every_parameter_gets_a_gradient_through_the_harness_loss(name):
    torch.manual_seed(0)
    params = {**resolve_model_params(name), **SMALL}
    config = type(HMILConfig() if name == "hmil" else HMILCodeConfig())(**params)
    model = HMIL(config, in_dim=D, hierarchy=HIER).train()
    x, mask = ragged((3, 5, 2), seed=4)
    t = targets([0, 3, 3], progress=0.4)
    out = model(x, mask, t)
    terms = tuple(dataclasses.replace(term, weight=1.0) for term in loss_terms(config))  # every term on
    loss, parts = compose_loss(out, t.fine, t.coarse, terms, epoch=4, total_epochs=10)
    assert set(parts) == {"fine_ce", "coarse_ce", "ham", "hba", "supcon"}
    loss.backward()
    for param_name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), param_name
        # Biases that every class/instance shares cancel in a softmax and legitimately get zero gradient.
        shift_invariant = param_name.endswith(("head.bias", "attention.w.bias"))
        assert shift_invariant or p.grad.abs().sum() > 0, param_name


def test_same_seed_same_loss_other_seed_other_loss():
    def loss(seed: int) -> float:
        model = small(seed=seed).train()
        x, mask = ragged((3, 5), seed=5)
        t = targets([1, 2], progress=0.1)
        out = model(x, mask, t)
        return compose_loss(out, t.fine, t.coarse, loss_terms(model.config), epoch=1, total_epochs=10)[
            0
        ].item()

    assert loss(0) == loss(0)
    assert loss(0) != loss(1)


@pytest.mark.parametrize("config", [HMILConfig, HMILCodeConfig])
def test_all_padding_and_single_instance_bags_give_no_nan(config):
    model = small(config).train()
    x, mask = ragged((1, 4, 1), seed=6)
    mask[2] = False  # a fully padded row
    t = targets([0, 2, 2], progress=0.0)
    out = model(x, mask, t)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.embeddings).all()
    assert set(out.aux_losses) == {"ham", "hba", "supcon"}
    assert all(torch.isfinite(v) for v in out.aux_losses.values())
    sum(out.aux_losses.values()).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    # The empty bag changes none of the aux losses of the other two.
    kept = model(x[:2], mask[:2], targets([0, 2], progress=0.0))
    for name, value in kept.aux_losses.items():
        torch.testing.assert_close(out.aux_losses[name], value, atol=1e-6, rtol=1e-5)
    single = model(x[:1, :1], mask[:1, :1], targets([0], progress=0.0))  # one bag of one instance
    assert all(torch.isfinite(v) for v in single.aux_losses.values())
    # One instance: A^c[:, 0] = (1, 1) but Mᵀ A^f[:, 0] = (2, 3) children, so HAM = 1 − 5/√26, not 0 (§5 scale).
    assert single.aux_losses["ham"].item() == pytest.approx(1 - 5 / math.sqrt(26), rel=1e-5)


@pytest.mark.parametrize("rung", sorted(LADDER))
def test_every_ladder_rung_returns_exactly_its_configured_terms(rung):
    model = small(**LADDER[rung]).train()
    x, mask = ragged((2, 3), seed=7)
    t = targets([4, 0], progress=0.2)
    out = model(x, mask, t)
    terms = loss_terms(model.config)
    assert set(out.aux_losses) == {term.name for term in terms} - {"fine_ce", "coarse_ce"}
    loss, _ = compose_loss(out, t.fine, t.coarse, terms, epoch=2, total_epochs=10)  # no missing/stray term
    assert torch.isfinite(loss)


def test_flat_rung_is_a_fine_only_model():
    model = small(**LADDER["1-flat"]).train()
    x, mask = ragged((2, 3))
    out = model(x, mask, targets([4, 0]))
    assert out.coarse_logits is None and out.attention.shape == (2, 5, 3) and out.aux_losses == {}
    assert model.coarse_attention is None and model.coarse_head is None
    assert split_attention(out.attention, HIER.n_fine)[1] is None


def test_no_aux_losses_in_eval_or_without_targets():
    model = small()
    x, mask = ragged((2, 3))
    assert model.train()(x, mask).aux_losses == {}
    assert model.eval()(x, mask, targets([0, 1])).aux_losses == {}
