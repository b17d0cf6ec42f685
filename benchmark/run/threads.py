"""The thread policy: torch never uses more CPU threads than the CPUs this process may run on.

torch's own default is the machine's core count, which oversubscribes a process pinned to fewer CPUs (a
SLURM job, ``taskset``, a container with a CPU quota expressed as an affinity mask) and made `benchmark perf`
1.1–1.7× slower on a shared 2-core machine. The chosen count is returned so callers can record it.
"""

from __future__ import annotations

import logging
import os

import torch

__all__ = ["apply_thread_policy", "cpu_budget"]

log = logging.getLogger(__name__)


def cpu_budget() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else the CPU count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


def apply_thread_policy(threads: int | None) -> int:
    """Set torch's intra-op threads to ``threads`` (default: `cpu_budget`), never more than `cpu_budget`.

    Returns:
        The number of threads set.
    """
    budget = cpu_budget()
    n = budget if threads is None else threads
    if n > budget:
        log.warning("--threads %d > the %d CPU(s) this process may use; using %d", n, budget, budget)
        n = budget
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
