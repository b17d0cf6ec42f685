"""Cross-validation: identical, hashed folds for every method.

Protocols (``CVConfig.protocol``):

- ``kfold`` (default): stratified (fine label), case-grouped k-fold with scikit-learn
  ``StratifiedGroupKFold`` semantics; validation is carved (stratified, grouped) from each fold's
  training part. Every slide is tested exactly once. With ``cv.repeats`` = R > 1 (repeated k-fold,
  e.g. 10-fold × 5 as in Ilse et al. 2018) the file holds R independent partitions, fold column
  ``r · k + f`` being fold f of repeat r, and every slide is tested exactly once per repeat.
- ``mc``: the HMIL paper's 10 Monte-Carlo class-stratified 80/10/10 splits (CLAM
  ``create_splits_seq.py`` style), here case-grouped. Test sets overlap across repetitions; compare
  methods with the Nadeau–Bengio corrected t-test, not a plain paired test.

Modules: `benchmark.cv.make` (drawing folds), `benchmark.cv.check` (validating a split table),
`benchmark.cv.files` (the split file: canonical bytes, digest, save, load, reuse) and `benchmark.cv.folds`
(role indices and per-fold counts).
"""

from benchmark.cv.check import check_splits, fold_columns
from benchmark.cv.files import (
    canonical_bytes,
    default_split_path,
    get_or_create_splits,
    load_splits,
    save_splits,
    split_digest,
    splits_of,
)
from benchmark.cv.folds import describe_splits, fold_indices
from benchmark.cv.make import ROLES, make_splits

__all__ = [
    "ROLES",
    "canonical_bytes",
    "check_splits",
    "default_split_path",
    "describe_splits",
    "fold_columns",
    "fold_indices",
    "get_or_create_splits",
    "load_splits",
    "make_splits",
    "save_splits",
    "split_digest",
    "splits_of",
]
