"""The thread policy: never more torch threads than the CPUs the process may use; recorded on fold runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from benchmark.run.threads import apply_thread_policy, cpu_budget


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity (Linux)")
def test_a_process_pinned_to_one_cpu_gets_one_thread():
    code = (
        "import os, torch; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); torch.set_num_threads(8)\n"
        "from benchmark.run.threads import apply_thread_policy, cpu_budget\n"
        "print(cpu_budget(), apply_thread_policy(None), apply_thread_policy(4), torch.get_num_threads())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1", "1", "1"]
    assert "--threads 4 > the 1 CPU(s)" in out.stderr


def test_default_is_the_cpu_budget_and_explicit_values_within_it_are_kept():
    import torch

    before = torch.get_num_threads()
    try:
        assert apply_thread_policy(None) == cpu_budget() == torch.get_num_threads()
        assert apply_thread_policy(1) == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
