"""`train.encoder=small-cnn`: a CNN trained end to end in front of any registered model (online features)."""

from __future__ import annotations

import pytest
import torch

from benchmark.core.contract import Targets
from benchmark.core.errors import ConfigError
from benchmark.core.hierarchy import Hierarchy
from benchmark.models import MODELS, ensure_registered, resolve_model_params
from benchmark.run.encoders import EncodedMIL, build_pipeline

ensure_registered()
HIER = Hierarchy.from_groups({"benign": ["0"], "low": ["1", "2"], "high": ["3", "4", "5"]})


def _pipeline(name: str) -> EncodedMIL:
    torch.manual_seed(0)
    model = build_pipeline(
        name,
        resolve_model_params(name),
        in_dim=64,
        hierarchy=HIER,
        encoder="small-cnn",
        encoder_dim=16,
        image_shape=(8, 8),
    )
    assert isinstance(model, EncodedMIL) and model.model.in_dim == 16
    return model


@pytest.mark.parametrize("name", ["abmil", "hmil", "transmil"])
def test_encoder_and_model_train_together(name: str) -> None:
    model = _pipeline(name).train()
    x, mask = torch.rand(3, 5, 64), torch.ones(3, 5, dtype=torch.bool)
    mask[1, 3:] = False
    out = model(x, mask, Targets(fine=torch.tensor([0, 3, 5]), coarse=None, progress=0.5))
    loss = out.logits.logsumexp(-1).sum() + sum(out.aux_losses.values(), torch.tensor(0.0))
    loss.backward()
    assert out.logits.shape == (3, HIER.n_fine) and torch.isfinite(out.logits).all()
    assert all(p.grad is not None for p in model.encoder.parameters())  # the CNN learns with the model


@pytest.mark.parametrize("name", ["abmil", "hmil"])
def test_padding_never_changes_an_encoded_bag(name: str) -> None:
    model = _pipeline(name).eval()
    bag = torch.rand(1, 4, 64)
    alone = model(bag, torch.ones(1, 4, dtype=torch.bool)).logits
    padded = torch.cat([bag, torch.full((1, 3, 64), 9.0)], dim=1)
    mask = torch.tensor([[True] * 4 + [False] * 3])
    torch.testing.assert_close(model(padded, mask).logits, alone, atol=1e-5, rtol=0)


def test_non_image_features_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"train.encoder=small-cnn: instances of width 1000 are not images"):
        build_pipeline(
            "abmil", resolve_model_params("abmil"), in_dim=1000, hierarchy=HIER, encoder="small-cnn"
        )
    with pytest.raises(ConfigError, match=r"image shape 7×7 does not fit instances of width 64"):
        build_pipeline(
            "abmil",
            resolve_model_params("abmil"),
            in_dim=64,
            hierarchy=HIER,
            encoder="small-cnn",
            image_shape=(7, 7),
        )
    assert "abmil" in MODELS
