"""One exception family for everything a user can get wrong.

The CLI prints a `BenchmarkError` as one line and exits with code 2; anything else is a bug
(exit 1, traceback with ``--debug``). Messages name the value, the rule and the fix.
"""

from __future__ import annotations

__all__ = ["BenchmarkError", "ConfigError", "DataError", "SplitError", "TrainingError", "UnknownNameError"]


class BenchmarkError(Exception):
    """Base class for user-facing errors (bad input, bad config, missing data)."""

    exit_code = 2


class ConfigError(BenchmarkError):
    """An option or config value breaks a rule."""


class DataError(BenchmarkError):
    """A dataset, label table or feature file is missing or malformed."""


class SplitError(BenchmarkError):
    """A split file is inconsistent, leaks cases, or does not match the recorded digest."""


class TrainingError(BenchmarkError):
    """Training produced no usable checkpoint (e.g. every validation epoch was NaN: a diverged run)."""


class UnknownNameError(BenchmarkError):
    """A registry lookup failed; the message lists the valid names and the closest match."""
