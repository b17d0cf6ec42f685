"""`hmil` and `hmil-code` stay bit-identical after the head/init/SupCon-scale switches were added.

The expected values were recorded with the code of commit 6a43ab9 (before the switches existed): same seed,
same weights, same input → the same float32 logits and auxiliary losses, bit for bit.
"""

from __future__ import annotations

import pytest
import torch

from benchmark.core.contract import Targets
from benchmark.core.hierarchy import Hierarchy
from benchmark.models import build_model, resolve_model_params

HIER = Hierarchy.from_groups(
    {"benign": ["ISUP 0"], "low": ["ISUP 1", "ISUP 2"], "high": ["ISUP 3", "ISUP 4", "ISUP 5"]}
)
FINE = [
    "0x1.213a820000000p-1",
    "0x1.da5e180000000p-2",
    "0x1.66d5280000000p-2",
    "0x1.72da580000000p-2",
    "0x1.08f1800000000p-2",
    "0x1.0778c80000000p-2",
    "-0x1.a60fb40000000p-2",
    "-0x1.fa38600000000p-2",
    "-0x1.aae1100000000p-2",
    "-0x1.c8e6080000000p-2",
    "-0x1.d3f9d80000000p-2",
    "-0x1.ece71c0000000p-2",
]
COARSE = [
    "0x1.0a6d840000000p-5",
    "0x1.f53dc80000000p-4",
    "-0x1.39dbf00000000p-7",
    "0x1.f98a3e0000000p-3",
    "0x1.9542440000000p-3",
    "0x1.adcee20000000p-3",
]
AUX = {
    "hmil": {"ham": "0x1.8de8220000000p-4", "hba": "0x1.0289fa0000000p+0", "supcon": "0x1.6139620000000p+1"},
    "hmil-code": {
        "ham": "0x1.8de8220000000p-4",
        "hba": "0x1.0b89a00000000p+0",
        "supcon": "0x1.ed15620000000p+1",
    },
}


def _model(name: str):
    torch.manual_seed(1234)
    return build_model(name, resolve_model_params(name), in_dim=32, hierarchy=HIER)


def _input(n_bags: int):
    g = torch.Generator().manual_seed(7)
    x = torch.rand(n_bags, 9, 32, generator=g)
    mask = torch.ones(n_bags, 9, dtype=torch.bool)
    mask[1, 6:] = False
    return x, mask


@pytest.mark.parametrize("name", ["hmil", "hmil-code"])
def test_logits_are_bit_identical_to_the_recorded_ones(name):
    with torch.no_grad():
        out = _model(name).eval()(*_input(2))
    assert [v.hex() for v in out.logits.flatten().tolist()] == FINE
    assert [v.hex() for v in out.coarse_logits.flatten().tolist()] == COARSE


@pytest.mark.parametrize("name", ["hmil", "hmil-code"])
def test_aux_losses_are_bit_identical_to_the_recorded_ones(name):
    fine = torch.tensor([0, 3, 3])
    targets = Targets(fine=fine, coarse=torch.tensor(HIER.coarse_of(fine.numpy())), progress=0.3)
    out = _model(name).train()(*_input(3), targets)
    assert {k: v.item().hex() for k, v in sorted(out.aux_losses.items())} == AUX[name]


def test_hmil_pc_differs_only_in_its_heads():
    shared, per_class = _model("hmil"), _model("hmil-pc")
    extra = sum(p.numel() for p in per_class.parameters()) - sum(p.numel() for p in shared.parameters())
    # fine: K_f·256 + K_f instead of 257; coarse: K_c·1024 + K_c instead of 1025
    assert extra == (6 * 257 - 257) + (3 * 1025 - 1025)
    assert per_class.fine_head.weight.shape == (6, 256) and per_class.coarse_head.weight.shape == (3, 1024)
