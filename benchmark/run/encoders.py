"""Instance encoders trained end to end with a MIL model (the "online feature extraction" setting).

The image datasets (``mnist-panda``, ``digits-panda``) store each instance as flattened pixels
(B, N, H·W) in [0, 1]; ``BagCollection.info["image_shape"]`` records (H, W). With
``train.encoder=small-cnn`` the trainer builds `EncodedMIL` = `SmallCNN` (B, N, H·W) → (B, N, F) followed by
any registered model built for ``in_dim=F``; both train end to end under the one optimiser. The model
contract is unchanged, so every model, loss and metric works as with stored features.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from benchmark.core.contract import MILModel, MILOutput, Targets
from benchmark.core.errors import ConfigError
from benchmark.core.hierarchy import Hierarchy
from benchmark.models import build_model

__all__ = ["EncodedMIL", "SmallCNN", "build_pipeline", "square_image_shape"]


def square_image_shape(in_dim: int) -> tuple[int, int]:
    """(H, W) of a square single-channel image flattened to ``in_dim`` values (784 → (28, 28)).

    Raises:
        ValueError: ``in_dim`` is not a perfect square.
    """
    side = math.isqrt(in_dim)
    if side * side != in_dim:
        raise ValueError(f"in_dim={in_dim} is not H·W of a square image; pass image_shape explicitly")
    return side, side


class SmallCNN(nn.Module):
    """LeNet-like per-instance image encoder: two conv-ReLU-maxpool blocks and a linear projection.

    For 28×28 inputs with the defaults: 28 → 14 → 7 spatial, 32·7·7 → ``out_dim``. For 8×8 inputs:
    8 → 4 → 2. Padded convolutions keep it valid for any image of at least 4×4 (Ilse et al.'s LeNet
    uses unpadded 5×5 kernels, which do not fit 8×8 digits).

    Args:
        image_shape: (H, W) of one instance; see `square_image_shape` to infer it from ``in_dim``.
        out_dim: F, the feature dimension handed to the MIL model.
        channels: output channels of the two conv blocks.
        dropout: dropout before the projection.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        out_dim: int = 128,
        *,
        channels: tuple[int, int] = (16, 32),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        h, w = (int(v) for v in image_shape)
        if h < 4 or w < 4:
            raise ValueError(f"SmallCNN needs images of at least 4×4, got {h}×{w}")
        self.image_shape = (h, w)
        self.out_dim = out_dim
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(c2 * (h // 4) * (w // 4), out_dim),
            nn.ReLU(inplace=True),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(M, H·W) flattened images → (M, F) features."""
        h, w = self.image_shape
        return self.head(self.features(x.reshape(-1, 1, h, w)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Encode every instance of a padded batch.

        Args:
            x: (B, N, H·W) flattened images.
            mask: (B, N) bool, True on real instances; padded positions are skipped (no compute) and
                come out as zeros. None encodes every position.

        Returns:
            (B, N, F) instance features.
        """
        b, n, d = x.shape
        if d != self.image_shape[0] * self.image_shape[1]:
            raise ValueError(f"SmallCNN for {self.image_shape} images got instances of dimension {d}")
        if mask is None:
            return self.encode(x.reshape(b * n, d)).reshape(b, n, self.out_dim)
        out = x.new_zeros(b, n, self.out_dim)
        out[mask] = self.encode(x[mask]).to(out.dtype)
        return out


class EncodedMIL(MILModel):
    """An instance encoder followed by a MIL model, trained together: (B, N, H·W) → encoder → (B, N, F) → model.

    The output is the inner model's `MILOutput` unchanged (its auxiliary losses included), so the harness
    treats the pair as one model. Padded instances are never encoded (the encoder skips them), hence
    padding invariance carries over from the inner model.

    Args:
        encoder: a `SmallCNN` (any module mapping (B, N, D) and a mask to (B, N, F) works).
        model: a MIL model built with ``in_dim = F``.
        in_dim: D, the stored instance width (H·W pixels).
    """

    def __init__(self, encoder: SmallCNN, model: MILModel, *, in_dim: int) -> None:
        super().__init__(in_dim=in_dim, n_classes=model.n_classes)
        self.encoder = encoder
        self.model = model
        self.permutation_invariant = model.permutation_invariant

    def _forward(self, x: torch.Tensor, mask: torch.Tensor, targets: Targets | None) -> MILOutput:
        return self.model(self.encoder(x, mask), mask, targets)


def build_pipeline(
    name: str,
    params: Mapping[str, object],
    *,
    in_dim: int,
    hierarchy: Hierarchy,
    encoder: str = "none",
    encoder_dim: int = 128,
    image_shape: Sequence[int] | None = None,
) -> MILModel:
    """The model a run trains: the registered model alone, or `EncodedMIL` when ``encoder`` is set.

    Args:
        name, params: registered model name and its resolved hyperparameters.
        in_dim: stored instance width D.
        hierarchy: the label tree.
        encoder: ``train.encoder`` ("none" or "small-cnn").
        encoder_dim: ``train.encoder_dim`` (F).
        image_shape: (H, W) of the instances (``BagCollection.info["image_shape"]``); None: square images.

    Raises:
        ConfigError: an image encoder on instances that are not images.
    """
    if encoder == "none":
        return build_model(name, params, in_dim=in_dim, hierarchy=hierarchy)
    if image_shape is None:
        try:
            image_shape = square_image_shape(in_dim)
        except ValueError:
            raise ConfigError(
                f"train.encoder={encoder}: instances of width {in_dim} are not images; use an image "
                "dataset (mnist-panda, digits-panda) or train.encoder=none."
            ) from None
    h, w = (int(v) for v in image_shape)
    if h * w != in_dim or min(h, w) < 4:
        raise ConfigError(
            f"train.encoder={encoder}: image shape {h}×{w} does not fit instances of width {in_dim} "
            "(needs H·W = D and H, W ≥ 4); use train.encoder=none."
        )
    model = build_model(name, params, in_dim=encoder_dim, hierarchy=hierarchy)
    return EncodedMIL(SmallCNN((h, w), out_dim=encoder_dim), model, in_dim=in_dim)
