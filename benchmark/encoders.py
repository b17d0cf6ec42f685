"""Instance encoders trained end to end with a MIL model (the "online feature extraction" setting).

The image datasets (``mnist-panda``, ``digits-panda``) store each instance as flattened pixels
(B, N, H·W) in [0, 1]; ``BagCollection.info["image_shape"]`` records (H, W). A model that wants
learned image features wraps `SmallCNN` in front of its pooling: (B, N, H·W) → (B, N, F). This module
registers nothing; exposing it (e.g. as a model hyperparameter) is up to the model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["SmallCNN", "square_image_shape"]


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
