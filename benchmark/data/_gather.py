"""The gather-and-pad step of `benchmark.data.bags.pad_batch`, for host (numpy) and device (torch) features.

Both return float32 ``x`` whatever the stored precision (float16 features are cast on the way), because
the models compute in float32; both apply the same float32 operations in the same order.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["gather_numpy", "gather_tensor"]


def gather_numpy(
    features: np.ndarray, rows: list[np.ndarray], standardize: tuple[np.ndarray, np.ndarray] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """x (B, N_max, D) float32 and mask (B, N_max) on the host; bag b holds ``features[rows[b]]``."""
    n_max = max(len(r) for r in rows)
    x = np.zeros((len(rows), n_max, features.shape[1]), dtype=np.float32)
    mask = np.zeros((len(rows), n_max), dtype=bool)
    for b, r in enumerate(rows):
        if len(r) and r[-1] - r[0] + 1 == len(r):  # contiguous: one slice copy, no fancy indexing
            x[b, : len(r)] = features[r[0] : r[-1] + 1]  # casts float16 → float32 on assignment
        else:
            x[b, : len(r)] = features[r]
        mask[b, : len(r)] = True
    if standardize is not None:
        mean, std = standardize
        x -= mean.astype(np.float32)
        x /= std.astype(np.float32)
        x[~mask] = 0.0
    return torch.from_numpy(x), torch.from_numpy(mask)


def gather_tensor(
    features: torch.Tensor, rows: list[np.ndarray], standardize: tuple[np.ndarray, np.ndarray] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """`gather_numpy` on ``features.device``: one indexed gather of all rows, scattered into the padding.

    The same float32 operations in the same order, so on the CPU the result is bit-identical.
    """
    device = features.device
    lengths = torch.tensor([len(r) for r in rows])
    mask = (torch.arange(int(lengths.max())).unsqueeze(0) < lengths.unsqueeze(1)).to(device)  # (B, N_max)
    flat = torch.from_numpy(np.concatenate(rows)).to(device)
    x = torch.zeros((*mask.shape, features.shape[1]), dtype=torch.float32, device=device)
    x[mask] = features[flat].float()  # mask is row-major (bag, position): the order of ``flat``
    if standardize is not None:
        mean, std = (torch.as_tensor(np.asarray(s, dtype=np.float32), device=device) for s in standardize)
        x -= mean
        x /= std
        x[~mask] = 0.0
    return x, mask
