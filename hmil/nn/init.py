"""Weight initialisation shared by the HMIL blocks."""

from __future__ import annotations

from torch import nn

from hmil.nn.heads import ClassWiseLinear

__all__ = ["kaiming_init_"]


def kaiming_init_(module: nn.Module) -> None:
    """Kaiming-normal weights (fan-in, gain √2: PyTorch's defaults) and zero biases on every Linear.

    This is the released code's initialisation (hmil-method.md §4.1); it replaces PyTorch's default
    Kaiming-uniform(a=√5) layer init, so it is applied once, after every block is built.
    """
    for layer in module.modules():
        if isinstance(layer, nn.Linear | ClassWiseLinear):
            nn.init.kaiming_normal_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
