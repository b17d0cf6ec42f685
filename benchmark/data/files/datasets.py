"""File-backed datasets: ``panda``, ``bracs`` and ``csv`` (your labels + any supported feature layout).

Each loader resolves its files (`benchmark.data.files.prepare`: labels CSV, hierarchy, feature store, joined
by slide id) and then reads the features once (`benchmark.data.files.pack.build_collection`).
"""

from __future__ import annotations

from benchmark.core.config import DataConfig
from benchmark.data.bags import BagCollection
from benchmark.data.files.pack import build_collection
from benchmark.data.files.prepare import (
    BRACS_HIERARCHY,
    PANDA_HIERARCHY,
    prepare_bracs,
    prepare_csv,
    prepare_panda,
)
from benchmark.data.loading import DatasetInfo, register_dataset

__all__ = ["BRACS_LAYOUT", "CSV_LAYOUT", "PANDA_LAYOUT", "load_bracs", "load_csv", "load_panda"]

_FEATURES = (
    "  features, one file per slide, in one of (searched up to 3 levels below <data_dir>, or --features DIR):\n"
    "    pt_files/<slide_id>.pt              CLAM, a float tensor (N, D)\n"
    "    h5_files/<slide_id>.h5              CLAM, datasets features (N, D) + coords (N, 2)\n"
    "    features_<encoder>/<slide_id>.h5    TRIDENT (one encoder; else pass --features)\n"
    "    <dir>/<slide_id>.h5                 STAMP, feats or patch_embeddings (N, D)"
)
PANDA_LAYOUT = (
    "<data_dir>/\n"
    "  train.csv   Kaggle PANDA header image_id,data_provider,isup_grade,gleason_score\n" + _FEATURES
)
BRACS_LAYOUT = (
    "<data_dir>/\n"
    "  labels.csv  slide_id,label[,case_id|patient_id][,site]; label in N PB UDH FEA ADH DCIS IC (or Type_N…)\n"
    + _FEATURES
)
CSV_LAYOUT = (
    "<data_dir>/\n"
    "  labels.csv      slide_id,label[,case_id|patient_id][,site]; label = a fine class name\n"
    "  hierarchy.toml  [groups] coarse = [fine, ...]; optional fine = [...] order, ordinal = true\n"
    + _FEATURES
)


@register_dataset(
    "panda",
    DatasetInfo(
        description="PANDA prostate biopsies (Kaggle train.csv): fine ISUP 0-5, coarse benign/low/high grade",
        hierarchy=PANDA_HIERARCHY,
        size="user data",
        needs_data_dir=True,
        layout=PANDA_LAYOUT,
    ),
)
def load_panda(cfg: DataConfig) -> BagCollection:
    """PANDA: fine = ISUP grade, site = data_provider, case = image_id (no patient ids)."""
    return build_collection(prepare_panda(cfg), cfg)


@register_dataset(
    "bracs",
    DatasetInfo(
        description="BRACS breast WSIs: 7 subtypes (N PB UDH FEA ADH DCIS IC) in benign/atypical/malignant",
        hierarchy=BRACS_HIERARCHY,
        size="user data",
        needs_data_dir=True,
        layout=BRACS_LAYOUT,
    ),
)
def load_bracs(cfg: DataConfig) -> BagCollection:
    """BRACS: labels from ``labels.csv``; group slides by ``case_id``/``patient_id`` when given."""
    return build_collection(prepare_bracs(cfg), cfg)


@register_dataset(
    "csv",
    DatasetInfo(
        description="Your own slides: a labels CSV + a hierarchy TOML + features in any supported layout",
        hierarchy=None,
        size="user data",
        needs_data_dir=True,
        layout=CSV_LAYOUT,
    ),
)
def load_csv(cfg: DataConfig) -> BagCollection:
    """Generic: fine labels from the CSV, fine → coarse tree from the TOML."""
    return build_collection(prepare_csv(cfg), cfg)
