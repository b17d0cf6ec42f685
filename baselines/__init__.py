"""Flat MIL baselines: ABMIL, pooling, CLAM, TransMIL, DSMIL and DTFD-MIL.

Every public module is a model file that registers its models (`benchmark.models` discovers them); the
``_``-prefixed modules are building blocks, not model files. The blocks with an API of their own are
re-exported here: the smooth top-1 SVM loss (CLAM's instance loss) and masked Nyström attention (TransMIL).
"""

from baselines._nystrom import MaskedNystromAttention, iterative_pinv
from baselines._smooth_svm import HARD_THRESHOLD, smooth_top1_svm

__all__ = ["HARD_THRESHOLD", "MaskedNystromAttention", "iterative_pinv", "smooth_top1_svm"]
