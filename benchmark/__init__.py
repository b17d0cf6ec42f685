"""hmil-bench: a benchmark harness for (hierarchical) multiple-instance learning on WSI features."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hmil-bench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
