"""Optuna search spaces and the study runner (issue #5)."""
