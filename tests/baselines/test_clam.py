"""CLAM-SB / CLAM-MB: smooth SVM, instance-loss selection and values by hand, small bags, subtyping,
parameter counts (baselines.md §1), padding invariance of the instance loss, loss terms."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from baselines import HARD_THRESHOLD, smooth_top1_svm
from baselines.clam import CLAMConfig, clam_instance_loss, masked_topk
from benchmark.core.config import LossTerm
from benchmark.core.contract import Targets
from benchmark.core.errors import ConfigError
from benchmark.core.hierarchy import Hierarchy
from benchmark.models import build_model, default_loss_terms, model_spec, resolve_model_params
from benchmark.run.loss_weighting import compose_loss


def hier(c: int) -> Hierarchy:
    return Hierarchy.from_groups({"all": [f"c{i}" for i in range(c)]})


def build(name: str, c: int = 3, d: int = 16, seed: int = 0, **params):
    torch.manual_seed(seed)
    return build_model(name, {**resolve_model_params(name), **params}, in_dim=d, hierarchy=hier(c))


def softplus(z: float) -> float:
    return math.log1p(math.exp(z))


# ------------------------------------------------------------------ smooth top-1 SVM
def test_smooth_svm_closed_form_three_classes():
    x = torch.tensor([[0.3, -1.2, 2.0], [1.0, 1.5, -0.5]])
    t = torch.tensor([0, 1])
    expected = [
        math.log(math.exp(0.0) + math.exp(-1.2 + 1 - 0.3) + math.exp(2.0 + 1 - 0.3)),
        math.log(math.exp(1.0 + 1 - 1.5) + math.exp(0.0) + math.exp(-0.5 + 1 - 1.5)),
    ]
    torch.testing.assert_close(smooth_top1_svm(x, t), torch.tensor(expected))
    assert smooth_top1_svm(x, t, reduction="mean").item() == pytest.approx(sum(expected) / 2, rel=1e-6)
    # temperature: τ · log Σ exp(·/τ)
    tau = 0.5
    e = tau * math.log(sum(math.exp(v / tau) for v in (0.0, -1.2 + 1 - 0.3, 2.0 + 1 - 0.3)))
    assert smooth_top1_svm(x[:1], t[:1], tau=tau).item() == pytest.approx(e, rel=1e-6)


def test_smooth_svm_two_class_is_softplus_with_unit_margin():
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(64, 2, generator=g) * 2).clamp(-3, 3)  # gaps < ln(1000): smooth branch
    t = torch.randint(0, 2, (64,), generator=g)
    wrong = x.gather(1, (1 - t).unsqueeze(1)).squeeze(1)
    right = x.gather(1, t.unsqueeze(1)).squeeze(1)
    torch.testing.assert_close(smooth_top1_svm(x, t), nn.functional.softplus(wrong - right + 1))


def test_smooth_svm_hard_switch_at_ln_1000():
    assert HARD_THRESHOLD == pytest.approx(6.907755, abs=1e-6)
    below, at, above = HARD_THRESHOLD - 1e-3, float(torch.tensor(HARD_THRESHOLD)), HARD_THRESHOLD + 1e-3
    x = torch.tensor([[0.0, below], [0.0, at], [0.0, above]])
    # target = the top logit: hard loss max(0, 1 − gap) = 0; smooth softplus(1 − gap) ≈ 2.7e-3.
    loss_top = smooth_top1_svm(x, torch.tensor([1, 1, 1]))
    assert loss_top[0].item() == pytest.approx(softplus(1 - below), abs=1e-7)  # fp32 logsumexp
    assert loss_top[0].item() > 2e-3
    assert loss_top[1].item() == 0.0 and loss_top[2].item() == 0.0
    # target = the lower logit: hard gap + 1, smooth softplus(gap + 1) = gap + 1 + ~3.7e-4.
    loss_low = smooth_top1_svm(x, torch.tensor([0, 0, 0]))
    assert loss_low[0].item() == pytest.approx(softplus(1 + below), rel=1e-6)
    assert loss_low[2].item() == pytest.approx(1 + above, rel=1e-6)
    assert loss_low[0].item() - (1 + below) > 3e-4  # log1p(e^-7.9) ≈ 3.7e-4


def test_smooth_svm_stays_finite_for_huge_logits():
    x = torch.tensor([[0.0, 1e30], [1e30, 0.0]], requires_grad=True)
    loss = smooth_top1_svm(x, torch.tensor([0, 0]), reduction="mean")
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


# ------------------------------------------------------------------ instance loss by hand
SCORES = [0.5, 3.0, -1.0, 2.0, 0.0, -2.0]  # top-2: 1, 3; bottom-2: 5, 2
C_VALUES = [
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    [-0.3, 0.7, 0.2, -0.1, 0.4, 0.05],
    [0.25, -0.6, 0.9, 0.35, -0.2, 0.15],
]


def heads(c: int, d: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """Instance heads g_i with logits (0, C_VALUES[i][n]) on h_n = e_n."""
    weight = torch.zeros(c, 2, d)
    for i in range(c):
        weight[i, 1, :6] = torch.tensor(C_VALUES[i])
    return weight, torch.zeros(c, 2)


def test_masked_topk_selects_real_instances_only():
    s = torch.tensor([[0.5, 3.0, -1.0, 2.0, 0.0, -2.0, 9.0, -9.0]])
    mask = torch.tensor([[True] * 6 + [False, False]])
    assert masked_topk(s, mask, 2).tolist() == [[1, 3]]
    assert masked_topk(s, mask, 2, largest=False).tolist() == [[5, 2]]
    assert masked_topk(s, mask, 8).tolist()[0][:6] == [1, 3, 0, 4, 2, 5]  # padding sorts last


def test_in_class_loss_value_by_hand():
    weight, bias = heads(2)
    scores = torch.tensor(SCORES).view(1, 1, 6)
    loss = clam_instance_loss(
        scores,
        torch.eye(6).unsqueeze(0),
        torch.ones(1, 6, dtype=torch.bool),
        torch.tensor([1]),
        weight,
        bias,
        k=2,
        subtyping=False,
    )
    c = C_VALUES[1]
    # targets 1 on instances 1, 3: softplus(0 − c + 1); targets 0 on 5, 2: softplus(c − 0 + 1)
    expected = (softplus(1 - c[1]) + softplus(1 - c[3]) + softplus(1 + c[5]) + softplus(1 + c[2])) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_ce_instance_loss_value_by_hand():
    weight, bias = heads(2)
    scores = torch.tensor(SCORES).view(1, 1, 6)
    loss = clam_instance_loss(
        scores,
        torch.eye(6).unsqueeze(0),
        torch.ones(1, 6, dtype=torch.bool),
        torch.tensor([0]),
        weight,
        bias,
        k=2,
        subtyping=False,
        criterion="ce",
    )
    c = C_VALUES[0]
    expected = (softplus(-c[1]) + softplus(-c[3]) + softplus(c[5]) + softplus(c[2])) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("multi_branch", [False, True])
def test_subtyping_adds_out_of_class_terms_and_divides_by_c(multi_branch):
    weight, bias = heads(3)
    rows = (
        [SCORES, [1.0, -1.0, 0.0, 4.0, 3.0, 2.0], [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]]
        if multi_branch
        else [SCORES]
    )
    scores = torch.tensor(rows).unsqueeze(0)
    args = (
        scores,
        torch.eye(6).unsqueeze(0),
        torch.ones(1, 6, dtype=torch.bool),
        torch.tensor([0]),
        weight,
        bias,
    )
    off = clam_instance_loss(*args, k=2, subtyping=False).item()
    on = clam_instance_loss(*args, k=2, subtyping=True).item()
    c = C_VALUES
    l_in = (softplus(1 - c[0][1]) + softplus(1 - c[0][3]) + softplus(1 + c[0][5]) + softplus(1 + c[0][2])) / 4
    assert off == pytest.approx(l_in, rel=1e-6)  # exactly one term without subtyping
    # top-2 of row i (SB: the single row {1, 3}; MB: row 1 → {3, 4}, row 2 → {5, 4}), target 0 under g_i
    top = {1: (3, 4), 2: (5, 4)} if multi_branch else {1: (1, 3), 2: (1, 3)}
    l_out = [sum(softplus(1 + c[i][n]) for n in top[i]) / 2 for i in (1, 2)]
    assert on == pytest.approx((l_in + sum(l_out)) / 3, rel=1e-6)


def reference_bag_loss(row_of, h_c, y: int, n: int, k: int, c: int, subtyping: bool) -> float:
    """Per-bag oracle in plain Python with the small-bag rule; h_c[i][m] = logit 1 of g_i on instance m."""
    if n < 2:
        return 0.0
    order = sorted(range(n), key=lambda m: -row_of(y)[m])
    k_in = min(k, n // 2)
    total = (
        sum(softplus(1 - h_c[y][m]) for m in order[:k_in])
        + sum(softplus(1 + h_c[y][m]) for m in order[n - k_in :])
    ) / (2 * k_in)
    if not subtyping:
        return total
    k_out = min(k, n)
    for i in range(c):
        if i != y:
            top = sorted(range(n), key=lambda m: -row_of(i)[m])[:k_out]
            total += sum(softplus(1 + h_c[i][m]) for m in top) / k_out
    return total / c


@pytest.mark.parametrize("subtyping", [False, True])
@pytest.mark.parametrize("multi_branch", [False, True])
def test_small_bags_follow_the_rule_without_crashing(subtyping, multi_branch):
    lengths, labels, c, k, width = (1, 2, 3, 5), [1, 0, 1, 0], 2, 8, 6
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(4, c if multi_branch else 1, width, generator=g)
    mask = torch.arange(width) < torch.tensor(lengths).unsqueeze(1)
    weight, bias = heads(c)
    loss = clam_instance_loss(
        scores,
        torch.eye(width).expand(4, -1, -1),
        mask,
        torch.tensor(labels),
        weight,
        bias,
        k=k,
        subtyping=subtyping,
    )
    for b, (n, y) in enumerate(zip(lengths, labels, strict=True)):

        def row_of(i, b=b):
            return scores[b, i if multi_branch else 0].tolist()

        expected = reference_bag_loss(row_of, C_VALUES, y, n, k, c, subtyping)
        assert loss[b].item() == pytest.approx(expected, rel=1e-6, abs=1e-7), f"bag of {n}"
    assert loss[0].item() == 0.0  # N = 1


# ------------------------------------------------------------------ the model
class FixedScores(nn.Module):
    def __init__(self, scores: torch.Tensor) -> None:
        super().__init__()
        self.scores = scores  # (B, N, H)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.scores


def test_model_instance_loss_with_known_attention():
    """The model ranks by its attention row and uses the head of the bag's fine label."""
    model = build("clam-sb", c=2, d=512, dropout=0.0, k_sample=2).train()
    model.embed = nn.Identity()  # h = x = e_n
    model.attention = FixedScores(torch.tensor(SCORES).view(1, 6, 1))
    weight, bias = heads(2, d=512)
    with torch.no_grad():
        for i, head in enumerate(model.instance_classifiers):
            head.weight.copy_(weight[i])
            head.bias.copy_(bias[i])
    x = torch.zeros(1, 6, 512)
    x[0, :, :6] = torch.eye(6)
    out = model(x, torch.ones(1, 6, dtype=torch.bool), Targets(fine=torch.tensor([1])))
    c = C_VALUES[1]
    expected = (softplus(1 - c[1]) + softplus(1 - c[3]) + softplus(1 + c[5]) + softplus(1 + c[2])) / 4
    assert out.aux_losses["instance"].item() == pytest.approx(expected, rel=1e-6)
    torch.testing.assert_close(out.attention[0, 0], torch.softmax(torch.tensor(SCORES), 0))


@pytest.mark.parametrize(
    ("name", "d", "c", "expected"),
    [
        ("clam-sb", 1024, 2, 790_791),
        ("clam-sb", 1536, 2, 1_052_935),
        ("clam-sb", 1024, 6, 796_947),
        ("clam-sb", 1536, 7, 1_060_630),
        ("clam-mb", 1024, 2, 791_048),
        ("clam-mb", 1536, 2, 1_053_192),
        ("clam-mb", 1024, 6, 798_232),
        ("clam-mb", 1536, 7, 1_062_172),
    ],
)
def test_parameter_counts_match_baselines_md(name, d, c, expected):
    model = build_model(name, resolve_model_params(name), in_dim=d, hierarchy=hier(c))
    assert sum(p.numel() for p in model.parameters()) == expected


def test_big_size_and_plain_attention_counts():
    d, c, att = 1024, 3, 384
    big = build("clam-sb", c=c, d=d, size="big")
    closed = (512 * d + 512) + 2 * (512 * att + att) + (att + 1) + (512 * c + c) + c * 1026
    assert sum(p.numel() for p in big.parameters()) == closed
    plain = build("clam-sb", c=c, d=d, gated=False)
    assert (
        sum(p.numel() for p in plain.parameters()) == closed - 2 * (512 * att + att) + (512 * 256 + 256) - 128
    )


@pytest.mark.parametrize("subtyping", [False, True])
@pytest.mark.parametrize("name", ["clam-sb", "clam-mb"])
def test_instance_loss_padding_invariance(name, subtyping):
    model = build(name, c=3, dropout=0.0, subtyping=subtyping, k_sample=4).train()
    lengths, labels = (1, 3, 7, 12), torch.tensor([2, 0, 1, 2])
    g = torch.Generator().manual_seed(5)
    bags = [torch.randn(n, 16, generator=g) for n in lengths]
    x = torch.zeros(4, 12, 16)
    mask = torch.zeros(4, 12, dtype=torch.bool)
    for b, bag in enumerate(bags):
        x[b, : len(bag)], mask[b, : len(bag)] = bag, True
    batched = model(x, mask, Targets(fine=labels)).aux_losses["instance"]
    alone = [
        model(
            bag.unsqueeze(0), torch.ones(1, len(bag), dtype=torch.bool), Targets(fine=labels[b : b + 1])
        ).aux_losses["instance"]
        for b, bag in enumerate(bags)
    ]
    assert alone[0].item() == 0.0
    torch.testing.assert_close(batched, torch.stack(alone).mean(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("name", "heads_"), [("clam-sb", 1), ("clam-mb", 3)])
def test_attention_shape_and_eval_has_no_instance_loss(name, heads_):
    model = build(name, c=3).eval()
    x, mask = torch.randn(2, 5, 16), torch.tensor([[True] * 5, [True] * 2 + [False] * 3])
    out = model(x, mask, Targets(fine=torch.tensor([0, 1])))
    assert out.attention.shape == (2, heads_, 5)
    assert out.aux_losses == {}
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(2, heads_))


def test_instance_loss_does_not_reach_attention():
    model = build("clam-mb", c=3, dropout=0.0).train()
    out = model(torch.randn(1, 9, 16), torch.ones(1, 9, dtype=torch.bool), Targets(fine=torch.tensor([1])))
    out.aux_losses["instance"].backward()
    assert all(p.grad is None for p in model.attention.parameters())
    assert model.embed[0].weight.grad.abs().sum() > 0
    assert model.instance_classifiers[1].weight.grad.abs().sum() > 0
    assert model.instance_classifiers[0].weight.grad.abs().sum() == 0  # absent class: zero, not missing


def test_xavier_normal_init_with_zero_biases():
    model = build("clam-mb", c=4, d=1024)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 1 + 3 + 4 + 4
    assert all(torch.all(m.bias == 0) for m in linears)
    assert model.embed[0].weight.std().item() == pytest.approx(math.sqrt(2 / (1024 + 512)), rel=0.02)


def test_loss_terms_and_train_defaults():
    params = resolve_model_params("clam-sb")
    assert default_loss_terms("clam-sb", params) == (LossTerm("fine_ce", 0.7), LossTerm("instance", 0.3))
    off = resolve_model_params("clam-mb", {"use_instance_loss": "false"})
    assert default_loss_terms("clam-mb", off) == (LossTerm("fine_ce"),)
    model = build("clam-mb", use_instance_loss=False).train()
    assert (
        model(
            torch.randn(1, 4, 16), torch.ones(1, 4, dtype=torch.bool), Targets(fine=torch.tensor([0]))
        ).aux_losses
        == {}
    )
    assert model_spec("clam-sb").train_defaults == {"lr": 2e-4, "weight_decay": 1e-5}


def test_total_loss_is_0_7_bag_plus_0_3_instance():
    model = build("clam-sb", c=3, subtyping=True).train()
    fine = torch.tensor([0, 2])
    out = model(torch.randn(2, 10, 16), torch.ones(2, 10, dtype=torch.bool), Targets(fine=fine))
    terms = default_loss_terms("clam-sb", resolve_model_params("clam-sb"))
    total, parts = compose_loss(out, fine, fine, terms, epoch=0, total_epochs=10)
    bag = nn.functional.cross_entropy(out.logits, fine)
    assert total.item() == pytest.approx(0.7 * bag.item() + 0.3 * out.aux_losses["instance"].item(), rel=1e-6)
    assert set(parts) == {"fine_ce", "instance"}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"size": "huge"}, "model.size='huge'"),
        ({"instance_loss": "hinge"}, "use 'svm' or 'ce'"),
        ({"k_sample": "0"}, "k_sample=0 must be ≥ 1"),
        ({"dropout": "1.5"}, r"dropout=1.5 must be in \[0, 1\)"),
    ],
)
def test_bad_config_is_a_config_error(override, message):
    with pytest.raises(ConfigError, match=message):
        resolve_model_params("clam-sb", override)


def test_config_defaults():
    cfg = CLAMConfig()
    assert (
        cfg.size,
        cfg.dropout,
        cfg.gated,
        cfg.k_sample,
        cfg.subtyping,
        cfg.instance_loss,
        cfg.use_instance_loss,
    ) == ("small", 0.25, True, 8, False, "svm", True)
