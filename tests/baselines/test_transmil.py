"""TransMIL and its masked Nyström attention (baselines.md §4, §7.2).

The reference computation for one sequence is re-derived here from the equations of §4.4 (full m×m
landmark matrices, reshape-based segment means, a left zero-pad and the tensor-wide pinv scale), so the
batched, masked, merged-landmark implementation is checked against the plain single-bag algorithm.
"""

from __future__ import annotations

import logging
import math

import pytest
import torch
import torch.nn.functional as F

from baselines import MaskedNystromAttention, iterative_pinv
from baselines.transmil import PPEG, TransMIL, TransMILConfig, grid_sides, square_index
from benchmark.core.errors import ConfigError
from benchmark.core.hierarchy import Hierarchy
from benchmark.models import build_model, resolve_model_params


def reference_nystrom(
    att: MaskedNystromAttention, x: torch.Tensor, *, keep_first: bool = False
) -> torch.Tensor:
    """Single-sequence Nyström attention straight from §4.4 with the module's weights. x: (n, dim)."""
    n, dim = x.shape
    m, h, dh = att.landmarks, att.heads, att.head_dim
    p = (-n) % m
    q, k, v = att.to_qkv(F.pad(x, (0, 0, p, 0))).chunk(3, -1)  # left zero-pad, bias-free projection
    q, k, v = (t.reshape(-1, h, dh).transpose(0, 1) for t in (q, k, v))  # (h, n + p, dh)
    q = q * dh**-0.5
    seg = math.ceil(n / m)
    q_land, k_land = q.reshape(h, m, seg, dh).mean(2), k.reshape(h, m, seg, dh).mean(2)
    f1, f2, f3 = ((a @ b.mT).softmax(-1) for a, b in ((q, k_land), (q_land, k_land), (q_land, k)))
    z = f2.mT / (f2.abs().sum(-1).max() * f2.abs().sum(-2).max())
    eye = torch.eye(m)
    for _ in range(att.pinv_iterations):
        xz = f2 @ z
        z = 0.25 * z @ (13 * eye - xz @ (15 * eye - xz @ (7 * eye - xz)))
    out = (f1 @ z) @ (f3 @ v)
    if att.res_conv is not None:
        out = out + att.res_conv(v.unsqueeze(0)).squeeze(0)
    out = att.to_out(out.transpose(0, 1).reshape(-1, dim))
    return out[:n] if keep_first else out[-n:]


def small_attention(seed: int = 0, **kwargs) -> MaskedNystromAttention:
    torch.manual_seed(seed)
    kwargs = {"heads": 2, "landmarks": 8, "residual_kernel": 5} | kwargs
    return MaskedNystromAttention(16, **kwargs).eval()


@pytest.mark.parametrize("v009", [False, True])
def test_nystrom_matches_single_sequence_reference_alone_and_batched(v009):
    att = small_attention(v009_slicing=v009)
    g = torch.Generator().manual_seed(1)
    # n < m, n = m, and n > m with 2, 3 and 4 rows per landmark segment (partly padded segments).
    for n in (1, 2, 5, 8, 9, 13, 17, 30):
        x = torch.randn(n, 16, generator=g)
        ref = reference_nystrom(att, x, keep_first=v009)
        with torch.no_grad():
            alone = att(x[None], torch.tensor([n]))[0]
            batch = torch.randn(3, 40, 16, generator=g)  # garbage in the padding must not matter
            batch[1, :n] = x
            batched = att(batch, torch.tensor([37, n, 4]))[1]
        torch.testing.assert_close(alone, ref, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(batched[:n], ref, atol=1e-6, rtol=1e-5)
        assert torch.all(batched[n:] == 0)


def test_nystrom_default_size_matches_reference_for_long_sequences():
    """m = 256, 8 heads of 64, n = 1025: 5 rows per segment, p = 255, one segment partly padding."""
    att = MaskedNystromAttention(512).eval()
    g = torch.Generator().manual_seed(2)
    n = 1025
    x = F.layer_norm(torch.randn(n, 512, generator=g), (512,))
    with torch.no_grad():
        batch = torch.zeros(2, 1100, 512)
        batch[0], batch[1, :n] = torch.randn(1100, 512, generator=g), x
        out = att(batch, torch.tensor([1100, n]))[1, :n]
        torch.testing.assert_close(out, reference_nystrom(att, x), atol=2e-6, rtol=1e-5)


def test_gradients_do_not_leak_across_bags_or_from_padding():
    att = small_attention()
    x = torch.randn(2, 12, 16, generator=torch.Generator().manual_seed(11), requires_grad=True)
    att(x, torch.tensor([12, 5]))[1].sum().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.all(x.grad[0] == 0) and torch.all(x.grad[1, 5:] == 0)
    assert torch.all(x.grad[1, :5].abs().sum(-1) > 0)


def test_nystrom_approaches_exact_attention_when_landmarks_are_the_tokens():
    """n = m: one token per segment, so F1 = F2 = F3 = softmax(q kᵀ) = A and out = A A⁺ A v = A v.

    Relative errors measured for n = 16: ≈1.4e-2 with 6 iterations, ≈1e-5 with 40 (the fp32 floor; more
    iterations only accumulate rounding). The 1e-3 bound sits between the two.
    """
    g = torch.Generator().manual_seed(3)
    x = F.layer_norm(torch.randn(1, 16, 32, generator=g), (32,))
    for kernel in (0, 5):  # the residual conv is identical in both paths, so it may stay on
        errors = {}
        for iterations in (6, 40):
            torch.manual_seed(0)
            att = MaskedNystromAttention(
                32, heads=4, landmarks=16, pinv_iterations=iterations, residual_kernel=kernel
            )
            with torch.no_grad():
                approx, exact = att(x, torch.tensor([16])), att.forward_exact(x, torch.tensor([16]))
            errors[iterations] = float((approx - exact).norm() / exact.norm())
        assert errors[40] < 1e-3 < errors[6]


def test_output_row_i_belongs_to_token_i_and_v009_flag_shifts_it():
    """n = m − 3 with 60 iterations: Nyström equals exact attention over the left-padded sequence.

    The correct output for token i is exact row p + i; nystrom-attention 0.0.9 returned row i instead.
    """
    m, n, p = 16, 13, 3
    g = torch.Generator().manual_seed(4)
    x = F.layer_norm(torch.randn(1, n, 32, generator=g), (32,))
    att = MaskedNystromAttention(32, heads=4, landmarks=m, pinv_iterations=60, residual_kernel=5).eval()
    with torch.no_grad():
        exact = att.forward_exact(torch.cat([torch.zeros(1, p, 32), x], 1), torch.tensor([m]))[0]
        correct = att(x, torch.tensor([n]))[0]
        att.v009_slicing = True
        shifted = att(x, torch.tensor([n]))[0]
    torch.testing.assert_close(correct, exact[p:], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(shifted, exact[:n], atol=1e-4, rtol=1e-4)
    assert (correct - shifted).abs().max() > 0.1


@pytest.mark.parametrize("n", [5, 13, 30])
def test_v009_rows_from_p_equal_the_correct_rows(n):
    """§4.5 check with the reference's 6 iterations: 0.0.9 rows p.. equal the correct rows 0..n−p−1."""
    att = small_attention()
    p = (-n) % att.landmarks
    x = torch.randn(1, n, 16, generator=torch.Generator().manual_seed(n))
    with torch.no_grad():
        correct = att(x, torch.tensor([n]))[0]
        att.v009_slicing = True
        shifted = att(x, torch.tensor([n]))[0]
    torch.testing.assert_close(shifted[p:], correct[: n - p], atol=1e-6, rtol=1e-5)
    assert not torch.allclose(shifted, correct, atol=1e-3)


def test_pinv_is_initialised_per_bag_and_converges():
    g = torch.Generator().manual_seed(5)
    a = torch.eye(6) + 0.1 * torch.randn(2, 6, 6, generator=g)
    x = torch.stack([a, 50 * a.flip(0)])  # (B=2, H=2, 6, 6); bag 1 on a very different scale
    batched = iterative_pinv(x, 6)
    for b in range(2):
        torch.testing.assert_close(batched[b : b + 1], iterative_pinv(x[b : b + 1], 6))
    torch.testing.assert_close(iterative_pinv(x, 30) @ x, torch.eye(6).expand(2, 2, 6, 6), atol=1e-5, rtol=0)


@pytest.mark.parametrize(("n", "side"), [(1, 1), (2, 2), (3, 2), (10, 4), (101, 11), (1025, 33)])
def test_square_padding_repeats_the_first_tokens(n, side):
    sides = grid_sides(torch.tensor([n, 0]))
    assert sides.tolist() == [side, 0]
    idx = square_index(torch.tensor([n, 0]), sides, side * side + 2)
    expected = list(range(n)) + list(range(side * side - n)) + [-1, -1]
    assert idx[0].tolist() == expected
    assert torch.all(idx[1] == -1)


def test_ppeg_matches_per_bag_grids_and_keeps_shape():
    torch.manual_seed(0)
    ppeg = PPEG(8)
    sides = torch.tensor([1, 2, 4, 3])
    tokens = torch.randn(4, 16, 8)
    out = ppeg(tokens, sides)
    assert out.shape == tokens.shape
    for b, h in enumerate(sides.tolist()):
        grid = tokens[b, : h * h].T.reshape(1, 8, h, h)  # row-major stored order
        ref = grid + sum(conv(grid) for conv in ppeg.convs)
        torch.testing.assert_close(out[b, : h * h], ref.reshape(8, h * h).T, atol=1e-6, rtol=1e-5)
        assert torch.all(out[b, h * h :] == 0)


def test_ppeg_parameter_count():
    assert sum(p.numel() for p in PPEG(512).parameters()) == 44_032


@pytest.mark.parametrize(
    ("d", "c", "expected"),
    [(1024, 2, 2_672_146), (1536, 2, 2_934_290), (1024, 6, 2_674_198), (1536, 7, 2_936_855)],
)
def test_parameter_counts_match_baselines_md(d, c, expected):
    hier = Hierarchy.from_groups({"all": [f"c{i}" for i in range(c)]})
    model = build_model("transmil", resolve_model_params("transmil"), in_dim=d, hierarchy=hier)
    assert sum(p.numel() for p in model.parameters()) == expected


def make_transmil(**overrides) -> TransMIL:
    torch.manual_seed(0)
    hier = Hierarchy.from_groups({"all": ["c0", "c1", "c2"]})
    return TransMIL(TransMILConfig(**overrides), in_dim=32, hierarchy=hier).eval()


def reference_transmil(model: TransMIL, x: torch.Tensor) -> torch.Tensor:
    """One bag (N, d) through §4.1–4.3 step by step with the model's weights; returns the logits (C,)."""
    h = model.fc1(x)
    n, side = len(h), math.isqrt(len(h) - 1) + 1
    seq = torch.cat([model.cls_token[0], h, h[: side * side - n]])  # cls, then the squared tokens
    seq = seq + reference_nystrom(
        model.layer1.attn, model.layer1.norm(seq), keep_first=model.config.nystrom_v009_slicing
    )
    grid = seq[1:].T.reshape(1, -1, side, side)
    grid = grid + sum(conv(grid) for conv in model.ppeg.convs)
    seq = torch.cat([seq[:1], grid.reshape(-1, side * side).T])
    seq = seq + reference_nystrom(
        model.layer2.attn, model.layer2.norm(seq), keep_first=model.config.nystrom_v009_slicing
    )
    return model.fc2(model.norm(seq[0]))


@pytest.mark.parametrize(("v009", "n"), [(False, 1), (False, 2), (False, 10), (False, 300), (True, 10)])
def test_model_equals_the_step_by_step_reference_for_one_bag(v009, n):
    model = make_transmil(nystrom_v009_slicing=v009)
    x = torch.randn(n, 32, generator=torch.Generator().manual_seed(n))
    with torch.no_grad():
        out = model(x[None], torch.ones(1, n, dtype=torch.bool)).logits[0]
        torch.testing.assert_close(out, reference_transmil(model, x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("v009", "lengths"),
    # 300 instances → 18² + 1 = 325 tokens: 2 rows per landmark segment, one segment half padding.
    [(False, (1, 2, 3, 5, 10, 17, 101)), (False, (300, 2, 17)), (True, (1, 2, 3, 5, 17))],
)
def test_padding_never_changes_the_class_token_output(v009, lengths):
    """Reference sizes (m = 256): every bag alone equals the same bag padded in a batch with longer ones."""
    model = make_transmil(nystrom_v009_slicing=v009)
    g = torch.Generator().manual_seed(6)
    x = torch.randn(len(lengths), max(lengths), 32, generator=g)
    mask = torch.arange(max(lengths))[None] < torch.tensor(lengths)[:, None]
    with torch.no_grad():
        batched = model(x, mask)
        for b, n in enumerate(lengths):
            alone = model(x[b : b + 1, :n], mask[b : b + 1, :n])
            torch.testing.assert_close(batched.logits[b], alone.logits[0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(batched.embeddings[b], alone.embeddings[0], atol=1e-5, rtol=1e-5)


def test_interleaved_mask_uses_the_real_instances_in_stored_order():
    model = make_transmil()
    x = torch.randn(1, 7, 32, generator=torch.Generator().manual_seed(7))
    mask = torch.tensor([[True, False, True, True, False, False, True]])
    with torch.no_grad():
        torch.testing.assert_close(model(x, mask).logits, model(x[:, mask[0]], mask[:, mask[0]]).logits)


def test_instance_order_matters():
    model = make_transmil()
    x = torch.randn(1, 9, 32, generator=torch.Generator().manual_seed(8))
    mask = torch.ones(1, 9, dtype=torch.bool)
    with torch.no_grad():
        assert not torch.allclose(model(x, mask).logits, model(x.flip(1), mask).logits, atol=1e-4)
    assert TransMIL.permutation_invariant is False


def test_v009_flag_changes_the_model_and_is_logged(caplog):
    x = torch.randn(1, 20, 32, generator=torch.Generator().manual_seed(9))
    mask = torch.ones(1, 20, dtype=torch.bool)
    with caplog.at_level(logging.INFO, logger="baselines.transmil"), torch.no_grad():
        correct, shifted = (
            make_transmil()(x, mask).logits,
            make_transmil(nystrom_v009_slicing=True)(x, mask).logits,
        )
    assert "last n (corrected" in caplog.text and "FIRST n" in caplog.text
    assert not torch.allclose(correct, shifted, atol=1e-4)


def test_bf16_autocast_keeps_the_attention_core_in_fp32():
    model = make_transmil()
    x = torch.randn(2, 12, 32, generator=torch.Generator().manual_seed(10))
    mask = torch.ones(2, 12, dtype=torch.bool)
    mask[1, 5:] = False
    with torch.no_grad():
        full = model(x, mask).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x, mask).logits
    assert torch.isfinite(low).all()
    torch.testing.assert_close(low.float(), full, atol=0.1, rtol=0.05)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"heads": 7}, r"model\.dim=512 must be a positive multiple of model\.heads=7"),
        ({"residual_kernel": 32}, r"model\.residual_kernel=32 must be 0 \(off\) or odd"),
        ({"landmarks": 0}, r"model\.landmarks=0 must be ≥ 1"),
        ({"pinv_iterations": -1}, r"model\.pinv_iterations=-1 must be ≥ 0"),
        ({"dropout": 1.0}, r"model\.dropout=1\.0 must be in \[0, 1\)"),
    ],
)
def test_bad_config_is_a_config_error(overrides, match):
    with pytest.raises(ConfigError, match=match):
        TransMILConfig(**overrides)
