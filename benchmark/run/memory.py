"""Memory: the peak of a code block (CUDA allocator peak on GPU, sampled process RSS on CPU), and handing
freed heap memory back to the OS between epochs."""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

import psutil
import torch

__all__ = ["PeakMemory", "release_free_memory"]


class PeakMemory:
    """Context manager measuring peak memory in MiB while the block runs.

    On CUDA this is ``torch.cuda.max_memory_allocated`` (reset on entry). On CPU a daemon thread samples
    the process RSS every ``interval`` seconds; the peak is the largest sample (so very short spikes
    can be missed, which is stated wherever the number is reported).
    """

    def __init__(self, device: torch.device | str = "cpu", interval: float = 0.02) -> None:
        self.device = torch.device(device)
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        proc = psutil.Process()
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, proc.memory_info().rss / 2**20)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.peak_mb = psutil.Process().memory_info().rss / 2**20
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            self.peak_mb = max(self.peak_mb, psutil.Process().memory_info().rss / 2**20)


def _libc_malloc_trim():  # noqa: ANN202 - a ctypes function or None
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows): nothing to trim
        return None


_MALLOC_TRIM = _libc_malloc_trim()


def release_free_memory() -> None:
    """Return the heap memory freed since the last call to the OS (glibc ``malloc_trim(0)``; a no-op elsewhere).

    Why: glibc keeps freed training buffers (padded batches, activations) in its arenas, so a process's
    resting RSS grew by ~130 MiB per epoch on realistic bags (300 slides × 500–1000 × 1024) and two epochs
    peaked 490 MiB above the same run with trimming. Called once per epoch, it costs milliseconds.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
