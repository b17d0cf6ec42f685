"""Tests against a real (single-node) Slurm cluster, started in CI by ``.ci/slurm.sh``."""
