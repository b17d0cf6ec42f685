"""Contract tests run over the whole model registry (tiny seeded ragged bags: B=2, N≤8, D=16)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import torch

from benchmark.core.contract import MILOutput, Targets
from benchmark.core.errors import BenchmarkError, UnknownNameError
from benchmark.core.hierarchy import Hierarchy
from benchmark.models import MODELS, build_model, ensure_registered, model_modules, resolve_model_params

ensure_registered()
NAMES = MODELS.names()
D = 16
HIER = Hierarchy.from_groups({"a": ["f0"], "b": ["f1", "f2"], "c": ["f3"]}, ordinal=True)


def make(name: str, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(name, resolve_model_params(name), in_dim=D, hierarchy=HIER)


def ragged(seed: int = 0, lengths=(5, 8)):
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(len(lengths), max(lengths), D)
    mask = torch.zeros(len(lengths), max(lengths), dtype=torch.bool)
    for b, n in enumerate(lengths):
        x[b, :n] = torch.randn(n, D, generator=g)
        mask[b, :n] = True
    return x, mask


def targets(b: int = 2) -> Targets:
    fine = torch.arange(b) % HIER.n_fine
    return Targets(fine=fine, coarse=torch.as_tensor(HIER.coarse_of(fine.numpy())))


def test_every_model_module_registers_something():
    owners = {spec.cls.__module__ for spec in MODELS}
    for module in model_modules():
        importlib.import_module(module)
        assert module in owners, f"{module} registers no model"


def test_unknown_model_lists_valid_names_and_suggests():
    with pytest.raises(UnknownNameError, match=r"valid names: .*abmil.*Did you mean 'abmil'"):
        MODELS.get("abmli")


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_finite(name):
    model = make(name).eval()
    x, mask = ragged()
    out = model(x, mask)
    assert isinstance(out, MILOutput)
    assert out.logits.shape == (2, HIER.n_fine)
    assert torch.isfinite(out.logits).all()
    if out.coarse_logits is not None:
        assert out.coarse_logits.shape == (2, HIER.n_coarse)
    if out.attention is not None:
        assert out.attention.shape[0] == 2 and out.attention.shape[-1] == x.shape[1]
        assert torch.all(out.attention[~mask.unsqueeze(1).expand_as(out.attention)] == 0)


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_gets_a_gradient(name):
    model = make(name).train()
    x, mask = ragged()
    out = model(x, mask, targets())
    loss = torch.nn.functional.cross_entropy(out.logits, targets().fine)
    loss = loss + sum(out.aux_losses.values(), torch.zeros(()))
    if out.coarse_logits is not None:
        loss = loss + torch.nn.functional.cross_entropy(out.coarse_logits, targets().coarse)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"no/NaN gradient for {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_padding_invariance(name):
    model = make(name).eval()
    x, mask = ragged(lengths=(3, 8))
    batched = model(x, mask).logits[0]
    alone = model(x[:1, :3], mask[:1, :3]).logits[0]
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", [n for n in NAMES if MODELS.get(n).cls.permutation_invariant])
def test_permutation_invariance(name):
    model = make(name).eval()
    x, mask = ragged(lengths=(6, 6))
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(
        model(x, mask).logits, model(x[:, perm], mask[:, perm]).logits, atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("name", NAMES)
def test_single_instance_and_mostly_padded(name):
    model = make(name).train()
    x, mask = ragged(lengths=(1, 8))
    out = model(x, mask, targets())
    assert torch.isfinite(out.logits).all()
    assert all(torch.isfinite(v) for v in out.aux_losses.values())
    model.eval()
    x1, m1 = ragged(lengths=(1,))
    assert torch.isfinite(model(x1, m1).logits).all()


@pytest.mark.parametrize("name", NAMES)
def test_all_padding_row_stays_finite(name):
    """Loaders reject empty bags; a fully padded batch row must still not poison the batch with NaN."""
    model = make(name).eval()
    x, mask = ragged(lengths=(4, 4))
    mask[1] = False
    x[1] = 0
    out = model(x, mask)
    assert torch.isfinite(out.logits).all()


def _two_steps(name: str, seed: int) -> dict[str, torch.Tensor]:
    model = make(name, seed).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    torch.manual_seed(seed)
    for step in range(2):
        x, mask = ragged(seed=step)
        out = model(x, mask, targets())
        loss = torch.nn.functional.cross_entropy(out.logits, targets().fine) + sum(
            out.aux_losses.values(), 0.0
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", NAMES)
def test_determinism(name):
    a, b, c = _two_steps(name, 0), _two_steps(name, 0), _two_steps(name, 1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_determinism_in_fresh_process():
    code = (
        "import torch; torch.set_num_threads(1); from tests.test_models import _two_steps; "
        "s=_two_steps('abmil',0); print(float(sum(v.float().sum() for v in s.values())))"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    ]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the fresh processes: reductions depend on the thread count
    try:
        here = float(sum(v.float().sum() for v in _two_steps("abmil", 0).values()))
    finally:
        torch.set_num_threads(threads)
    assert runs[0] == runs[1]
    assert float(runs[0]) == pytest.approx(here, abs=0, rel=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip(name):
    a, b = make(name, 0).eval(), make(name, 1).eval()
    b.load_state_dict(a.state_dict())
    x, mask = ragged()
    torch.testing.assert_close(a(x, mask).logits, b(x, mask).logits)


@pytest.mark.parametrize("name", NAMES)
def test_forward_rejects_bad_inputs(name):
    model = make(name)
    x, mask = ragged()
    with pytest.raises(BenchmarkError, match="feature width"):
        model(x[..., :4], mask)
    with pytest.raises(BenchmarkError, match="mask must be bool"):
        model(x, mask.float())


@pytest.mark.parametrize(
    ("name", "d", "c", "expected"),
    [
        ("abmil", 1024, 2, 657_283),
        ("abmil", 1536, 2, 919_427),
        ("abmil", 1024, 6, 659_335),
        ("abmil", 1536, 7, 921_992),
        ("abmil-plain", 1024, 2, 591_619),
        ("abmil-plain", 1536, 2, 853_763),
        ("abmil-plain", 1024, 6, 593_671),
        ("abmil-plain", 1536, 7, 856_328),
    ],
)
def test_parameter_counts_match_baselines_md(name, d, c, expected):
    hier = Hierarchy.from_groups({"all": [f"c{i}" for i in range(c)]})
    model = build_model(name, resolve_model_params(name), in_dim=d, hierarchy=hier)
    assert sum(p.numel() for p in model.parameters()) == expected
