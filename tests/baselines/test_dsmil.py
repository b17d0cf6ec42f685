"""DSMIL: parameter counts (baselines.md §1), critical instance over real instances, both streams, losses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from baselines.dsmil import DSMIL, DSMILConfig, dsmil_loss_terms, masked_argmax, normalised_entropy
from benchmark.core.contract import Targets
from benchmark.core.errors import ConfigError
from benchmark.core.hierarchy import Hierarchy
from benchmark.models import build_model, default_loss_terms, model_spec, resolve_model_params


def flat(c: int) -> Hierarchy:
    return Hierarchy.from_groups({"all": [f"c{i}" for i in range(c)]})


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("d", "c", "expected"), [(1024, 2, 153_860), (1536, 2, 222_468), (1024, 6, 190_732), (1536, 7, 299_278)]
)
def test_parameter_counts_match_baselines_md(d, c, expected):
    model = build_model("dsmil", resolve_model_params("dsmil"), in_dim=d, hierarchy=flat(c))
    assert n_params(model) == expected
    # Closed form (dC + C) + (128d + 128) + 16,512 + (C²d + C).
    assert expected == (d * c + c) + (128 * d + 128) + 16_512 + (c * c * d + c)


@pytest.mark.parametrize(("d", "expected"), [(1024, 149_762), (1536, 216_322)])
def test_reference_binary_form_has_one_stream(d, expected):
    model = DSMIL(DSMILConfig(multilabel=True), in_dim=d, hierarchy=flat(2))
    assert model.n_streams == 1
    assert n_params(model) == expected


def test_masked_argmax_ignores_huge_padding():
    scores = torch.tensor([[[1.0, 5.0], [3.0, 2.0], [1e30, 1e30]]])  # (1, 3, 2), last row padding
    mask = torch.tensor([[True, True, False]])
    assert masked_argmax(scores, mask).tolist() == [[1, 0]]


def _reference_single_bag(model: DSMIL, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DSMIL on one unpadded bag (N, d), written per instance from §5.1: (bag logits, max logits, critical)."""
    c = model.instance_classifier(x)  # (N, C)
    critical = c.argmax(0)  # (C,)
    q = model.query(x)  # (N, Q)
    logits_a = (q @ model.query(x[critical]).T) / math.sqrt(q.shape[1])  # (N, C)
    a = torch.softmax(logits_a, dim=0)
    bag = a.T @ x  # (C, d)
    return model.bag_classifier(bag.unsqueeze(0)).view(-1), c.max(0).values, critical


def _model(d: int = 8, c: int = 3, **kw) -> DSMIL:
    torch.manual_seed(0)
    return DSMIL(DSMILConfig(**kw), in_dim=d, hierarchy=flat(c)).eval()


def test_critical_instance_is_argmax_over_real_instances_only():
    model = _model()
    with torch.no_grad():  # every class score grows with the features, so huge padding would win the max
        model.instance_classifier.weight.abs_()
    g = torch.Generator().manual_seed(1)
    x_real = torch.rand(5, 8, generator=g)
    x = torch.full((2, 7, 8), 1e6)
    x[0, :5], x[1] = x_real, torch.rand(7, 8, generator=g)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[0, 5:] = False
    with torch.no_grad():
        out = model(x, mask)
        expected_logits, _, critical = _reference_single_bag(model, x_real)
        seen = masked_argmax(model.instance_classifier(x), mask)
    assert seen[0].tolist() == critical.tolist() and (seen[0] < 5).all()
    torch.testing.assert_close(out.logits[0], expected_logits, atol=1e-5, rtol=1e-5)
    assert torch.all(out.attention[0, :, 5:] == 0)
    torch.testing.assert_close(out.attention[0].sum(-1), torch.ones(3))


def test_max_stream_loss_uses_real_instances_and_reference_weights():
    model = _model().train()
    x = torch.rand(1, 6, 8)
    x[0, 4:] = 1e6
    mask = torch.tensor([[True] * 4 + [False] * 2])
    fine = torch.tensor([2])
    out = model(x, mask, Targets(fine=fine))
    _, max_logits, _ = _reference_single_bag(model, x[0, :4])
    torch.testing.assert_close(out.aux_losses["max_ce"], F.cross_entropy(max_logits.unsqueeze(0), fine))
    terms = {t.name: t.weight for t in default_loss_terms("dsmil", resolve_model_params("dsmil"))}
    assert terms == {"fine_ce": 0.5, "max_ce": 0.5, "attn_entropy": 0.0}
    assert 0.0 <= float(out.aux_losses["attn_entropy"]) <= 1.0
    assert not out.aux_losses["attn_entropy"].requires_grad
    model.eval()
    assert model(x, mask, Targets(fine=fine)).aux_losses == {}


def test_multilabel_reference_form_logits_and_bce():
    model = _model(c=3, multilabel=True).train()
    x, mask = torch.rand(2, 5, 8), torch.ones(2, 5, dtype=torch.bool)
    fine = torch.tensor([0, 2])
    out = model(x, mask, Targets(fine=fine))
    assert out.logits.shape == (2, 3) and torch.all(out.logits[:, 0] == 0)
    onehot = torch.tensor([[0.0, 0.0], [0.0, 1.0]])  # class 0 is the all-zero negative target
    torch.testing.assert_close(
        out.aux_losses["bag_bce"], F.binary_cross_entropy_with_logits(out.logits[:, 1:], onehot)
    )
    assert set(out.aux_losses) == {"bag_bce", "max_bce", "attn_entropy"}
    assert [(t.name, t.weight) for t in dsmil_loss_terms(DSMILConfig(multilabel=True))] == [
        ("fine_ce", 0.0),
        ("bag_bce", 0.5),
        ("max_bce", 0.5),
        ("attn_entropy", 0.0),
    ]


def test_binary_form_softmax_equals_sigmoid():
    model = _model(c=2, multilabel=True)
    out = model(torch.rand(1, 4, 8), torch.ones(1, 4, dtype=torch.bool))
    torch.testing.assert_close(torch.softmax(out.logits, -1)[:, 1], torch.sigmoid(out.logits[:, 1]))


def test_normalised_entropy_is_one_for_uniform_and_zero_for_one_hot():
    mask = torch.tensor([[True] * 4 + [False], [True] * 5])
    uniform = mask.float().unsqueeze(1) / mask.sum(-1, keepdim=True).unsqueeze(1)
    assert float(normalised_entropy(uniform, mask)) == pytest.approx(1.0)
    one_hot = torch.zeros(2, 1, 5)
    one_hot[:, 0, 1] = 1.0
    assert float(normalised_entropy(one_hot, mask)) == pytest.approx(0.0)


def test_linear_query_and_value_network_options():
    model = _model(nonlinear_q=False, passing_v=True, dropout_v=0.1)
    assert isinstance(model.query, torch.nn.Linear)
    assert n_params(model) == (8 * 3 + 3) + (8 * 128 + 128) + (8 * 8 + 8) + (9 * 8 + 3)
    out = model(torch.rand(2, 4, 8), torch.ones(2, 4, dtype=torch.bool))
    assert torch.isfinite(out.logits).all()


def test_orthogonal_init_and_train_defaults():
    model = _model(d=16, c=3)
    w = model.instance_classifier.weight  # (3, 16): orthonormal rows
    torch.testing.assert_close(w @ w.T, torch.eye(3), atol=1e-5, rtol=0)
    assert torch.all(model.bag_classifier.bias == 0)
    assert model_spec("dsmil").train_defaults == {
        "lr": 1e-4,
        "weight_decay": 1e-3,
        "optimizer": "adam",
    }


def test_bad_config_raises():
    with pytest.raises(ConfigError, match="q_dim must be ≥ 1"):
        DSMILConfig(q_dim=0)
    with pytest.raises(ConfigError, match="dropout_v"):
        DSMILConfig(dropout_v=1.5)
