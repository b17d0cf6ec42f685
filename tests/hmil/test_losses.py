"""HAM, HBA and SupCon against hand-computed values and naive reference loops (hmil-method.md §5–7, §17)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from benchmark.core.contract import masked_softmax
from hmil.losses import ham_loss, hba_loss, scl_temperature, supcon_loss

# Fine classes 0, 1, 2 → coarse 0; fine 3, 4 → coarse 1 (K_f = 5, K_c = 2).
PARENT = [0, 0, 0, 1, 1]
M = F.one_hot(torch.tensor(PARENT), 2).float()  # (K_f, K_c)


def _attention(n_heads: int, lengths: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(len(lengths), max(lengths), dtype=torch.bool)
    for b, n in enumerate(lengths):
        mask[b, :n] = True
    scores = torch.randn(len(lengths), n_heads, max(lengths), generator=g) * 3
    return masked_softmax(scores, mask.unsqueeze(1)), mask


# ---------------------------------------------------------------------------------------------- HAM
def test_ham_is_zero_when_coarse_attention_is_proportional_to_rolled_up_fine_attention():
    a_f, mask = _attention(5, (4, 7), seed=0)
    rolled = torch.einsum("bjn,jk->bkn", a_f, M)
    scale = torch.rand(2, 1, 7, generator=torch.Generator().manual_seed(1)) + 0.1  # any positive per instance
    a_c = rolled * scale
    assert ham_loss(a_c, a_f, M, mask).item() == pytest.approx(0.0, abs=1e-6)


def test_ham_is_one_for_orthogonal_attention_and_in_unit_interval():
    mask = torch.ones(1, 2, dtype=torch.bool)
    a_f = torch.zeros(1, 5, 2)
    a_f[0, 0] = torch.tensor([0.5, 0.5])  # all fine mass under coarse 0
    a_c = torch.zeros(1, 2, 2)
    a_c[0, 1] = torch.tensor([0.5, 0.5])  # all coarse mass on coarse 1
    assert ham_loss(a_c, a_f, M, mask).item() == pytest.approx(1.0)
    for seed in range(5):
        a_f, mask = _attention(5, (1, 3, 6), seed=seed)
        a_c, _ = _attention(2, (1, 3, 6), seed=seed + 100)
        value = ham_loss(a_c, a_f, M, mask).item()
        assert 0.0 <= value <= 1.0


def test_ham_hand_computed_and_averaged_over_real_instances_then_bags():
    # Bag 0: two real instances; bag 1: one real instance plus one padded slot.
    mask = torch.tensor([[True, True], [True, False]])
    a_f = torch.zeros(2, 5, 2)
    a_f[0, 0] = torch.tensor([0.5, 0.0])
    a_f[0, 3] = torch.tensor([0.0, 0.5])
    a_f[0, 4] = torch.tensor([0.5, 0.5])  # rolled bag 0: instance 0 → (0.5, 0.5), instance 1 → (0, 1)
    a_f[1, 1, 0] = 1.0  # rolled bag 1, instance 0 → (1, 0)
    a_c = torch.zeros(2, 2, 2)
    a_c[0, :, 0] = torch.tensor([1.0, 0.0])  # cos with (0.5, 0.5) = 1/√2
    a_c[0, :, 1] = torch.tensor([0.0, 1.0])  # cos 1
    a_c[1, :, 0] = torch.tensor([1.0, 0.0])  # cos 1
    expected = ((1 - 1 / math.sqrt(2)) / 2 + 0.0) / 2
    assert ham_loss(a_c, a_f, M, mask).item() == pytest.approx(expected, rel=1e-6)


def test_ham_ignores_empty_bags():
    a_f, mask = _attention(5, (3, 5), seed=2)
    a_c, _ = _attention(2, (3, 5), seed=3)
    alone = ham_loss(a_c[:1], a_f[:1], M, mask[:1])
    mask_with_empty = mask.clone()
    mask_with_empty[1] = False
    value = ham_loss(a_c * mask_with_empty[:, None], a_f * mask_with_empty[:, None], M, mask_with_empty)
    torch.testing.assert_close(value, alone)
    assert ham_loss(a_c * 0, a_f * 0, M, torch.zeros_like(mask)).item() == 0.0


# ---------------------------------------------------------------------------------------------- HBA
def test_hba_nll_is_minus_log_of_the_true_parents_rolled_up_probability():
    probs = torch.tensor([[0.1, 0.15, 0.05, 0.4, 0.3], [0.5, 0.2, 0.1, 0.1, 0.1]])
    coarse = torch.tensor([0, 1])  # q = (0.3, 0.7) and (0.8, 0.2)
    value = hba_loss(probs.log(), coarse, M, form="nll")
    assert value.item() == pytest.approx((-math.log(0.3) - math.log(0.2)) / 2, rel=1e-6)


def test_hba_nll_approaches_zero_as_fine_mass_concentrates_under_the_true_parent():
    coarse = torch.tensor([1])
    values = [hba_loss(torch.tensor([[0.0, 0.0, 0.0, s, s / 2]]), coarse, M).item() for s in (0.0, 5.0, 20.0)]
    assert values[0] > values[1] > values[2] and values[2] < 1e-7


def test_hba_nll_clamps_at_1e8():
    logits = torch.tensor([[200.0, 0.0, 0.0, -200.0, -200.0]])
    assert hba_loss(logits, torch.tensor([1]), M).item() == pytest.approx(-math.log(1e-8), rel=1e-6)


def test_hba_ce_on_probs_hand_computed_and_never_below_its_bound():
    probs = torch.tensor([[0.1, 0.15, 0.05, 0.4, 0.3]])  # q = (0.3, 0.7)
    value = hba_loss(probs.log(), torch.tensor([0]), M, form="ce_on_probs").item()
    assert value == pytest.approx(math.log(1 + math.exp(0.4)), rel=1e-6)
    bound = -math.log(math.e / (math.e + 2 - 1))  # K_c = 2 → 0.313
    assert bound == pytest.approx(0.3133, abs=1e-4)
    strongest = hba_loss(torch.tensor([[0.0, 0.0, 0.0, 50.0, 0.0]]), torch.tensor([1]), M, form="ce_on_probs")
    assert strongest.item() >= bound - 1e-6 and strongest.item() == pytest.approx(bound, abs=1e-6)
    g = torch.Generator().manual_seed(0)
    for _ in range(10):
        logits = torch.randn(8, 5, generator=g) * 10
        labels = torch.randint(0, 2, (8,), generator=g)
        assert hba_loss(logits, labels, M, form="ce_on_probs").item() >= bound - 1e-6


def test_hba_rejects_unknown_form():
    with pytest.raises(ValueError, match="hba form must be one of"):
        hba_loss(torch.zeros(1, 5), torch.tensor([0]), M, form="kl")


# ---------------------------------------------------------------------------------------------- SupCon
def naive_supcon(emb, labels, tau, tau_base=None, positives="all_rows", divide_by_batch=False):
    """Direct double loop over the formula of hmil-method.md §7."""
    n_bags, k, _ = emb.shape
    rows = [(b, j) for b in range(n_bags) for j in range(k)]
    e = {r: emb[r[0], r[1]].detach().double() for r in rows}
    scale = 1.0 if tau_base is None else tau / tau_base
    losses = []
    for i in rows:
        if positives == "gt_row" and i[1] != labels[i[0]]:
            continue
        m = max(float(e[i] @ e[a]) / tau for a in rows)
        u = {a: float(e[i] @ e[a]) / tau - m for a in rows}
        log_den = math.log(sum(math.exp(u[a]) for a in rows if a != i) + 1e-6)
        pos = [a for a in rows if a != i and labels[a[0]] == labels[i[0]]]
        if positives == "gt_row":
            pos = [a for a in pos if a[1] == labels[a[0]]]
        losses.append(-scale / (len(pos) + 1e-6) * sum(u[p] - log_den for p in pos))
    value = sum(losses) / len(losses)
    return value / n_bags if divide_by_batch else value


def _embeddings(n_bags: int, k: int = 3, dim: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n_bags, k, dim, generator=g), dim=-1)


def test_supcon_tiny_hand_computed_example():
    # Bag 0 rows (1,0), (0,1) with label 0; bag 1 rows (1,0), (1,0) with label 1; τ = 1.
    emb = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]]])
    value = supcon_loss(emb, torch.tensor([0, 1]), tau=1.0).item()
    # Each row's only positive is the other row of its own bag (labels differ between bags).
    expected = (1 + 3 * math.log(2 + math.exp(-1)) + math.log(3)) / 4
    assert value == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tau": 0.1},  # paper preset
        {"tau": 0.55, "tau_base": 0.1, "divide_by_batch": True},  # code preset, mid-schedule τ
        {"tau": 0.1, "positives": "gt_row"},
        {"tau": 0.3, "positives": "gt_row", "tau_base": 0.1, "divide_by_batch": True},
    ],
)
def test_supcon_vectorised_equals_naive_loop(kwargs):
    emb = _embeddings(5)
    labels = torch.tensor([0, 2, 0, 1, 2])
    value = supcon_loss(emb, labels, **kwargs).item()
    assert value == pytest.approx(naive_supcon(emb, labels.tolist(), **kwargs), rel=1e-5, abs=1e-6)


def test_supcon_rows_of_the_same_bag_are_positives():
    emb = _embeddings(1)
    value = supcon_loss(emb, torch.tensor([1]), tau=0.1)
    assert value.item() == pytest.approx(naive_supcon(emb, [1], 0.1), rel=1e-5)
    assert value.item() != 0.0  # the bag's own other rows are its positives
    # Pulling a bag's rows together lowers the loss.
    together = F.normalize(emb + 5 * emb[:, :1], dim=-1)
    assert supcon_loss(together, torch.tensor([1]), tau=0.1).item() < value.item()


def test_supcon_is_invariant_to_bag_order():
    emb = _embeddings(6, seed=3)
    labels = torch.tensor([0, 1, 1, 2, 0, 1])
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    for positives in ("all_rows", "gt_row"):
        a = supcon_loss(emb, labels, tau=0.1, positives=positives)
        b = supcon_loss(emb[perm], labels[perm], tau=0.1, positives=positives)
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


def test_supcon_scaling_by_tau_over_base_and_by_batch():
    emb, labels = _embeddings(4), torch.tensor([0, 1, 0, 1])
    plain = supcon_loss(emb, labels, tau=1.0)
    torch.testing.assert_close(supcon_loss(emb, labels, tau=1.0, tau_base=0.1), 10 * plain)
    torch.testing.assert_close(supcon_loss(emb, labels, tau=1.0, divide_by_batch=True), plain / 4)


def test_supcon_without_positives_is_zero_and_finite():
    emb = _embeddings(1).requires_grad_()
    value = supcon_loss(emb, torch.tensor([0]), tau=0.1, positives="gt_row")
    value.backward()
    assert value.item() == 0.0 and torch.isfinite(emb.grad).all()


def test_supcon_drops_invalid_bags():
    emb, labels = _embeddings(3), torch.tensor([0, 1, 0])
    emb_with_empty = torch.cat([emb, torch.zeros(1, 3, 4)])
    valid = torch.tensor([True, True, True, False])
    for kwargs in ({"tau": 0.1}, {"tau": 0.1, "positives": "gt_row", "divide_by_batch": True}):
        expected = supcon_loss(emb, labels, **kwargs)
        got = supcon_loss(emb_with_empty, torch.cat([labels, torch.tensor([0])]), valid=valid, **kwargs)
        torch.testing.assert_close(got, expected)
    none_valid = supcon_loss(emb, labels, tau=0.1, valid=torch.zeros(3, dtype=torch.bool))
    assert none_valid.item() == 0.0


@pytest.mark.parametrize(
    ("progress", "tau"), [(0.0, 1.0), (0.25, 0.55), (0.5, 0.1), (0.75, 0.55), (199 / 200, 1.0)]
)
def test_cosine_temperature_schedule(progress, tau):
    assert scl_temperature(progress, mode="cosine", tau=0.1, tau_max=1.0) == pytest.approx(tau, abs=1e-3)
    assert scl_temperature(progress, mode="fixed", tau=0.1) == 0.1
