"""Flat MIL baselines (ABMIL, pooling, and later CLAM, TransMIL, DSMIL, DTFD); each file registers its models."""
