"""Peak memory of a code block: CUDA allocator peak on GPU, sampled process RSS on CPU."""

from __future__ import annotations

import threading

import psutil
import torch

__all__ = ["PeakMemory"]


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
