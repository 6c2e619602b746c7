"""The console script keeps freed memory in the heap (utils.heap): a batch-sized buffer allocated again and again
faults its pages in once, not every time, and malloc settings the user made win. Measured in child processes,
since the setting is per process."""
from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from latentspace.utils.heap import keep_freed_memory

FAULTS = (
    "import resource, sys, torch; from latentspace.cli import entry; entry.prepare_environment()\n"
    "torch.ones(1).add_(1)\n"
    "def faults(): return resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
    "before = faults()\n"
    "for _ in range(60):\n"
    "    torch.empty(16 << 20).fill_(1.0)  # 64 MB, above glibc's largest default mmap threshold\n"
    "print(faults() - before)\n"
)
PAGES = (16 << 20) * 4 // 4096  # pages one buffer touches


def faults(**env: str) -> int:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | env
    out = subprocess.run([sys.executable, "-c", FAULTS], env=environ, capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="not glibc: no mallopt to raise the thresholds with")
def test_a_reallocated_buffer_faults_its_pages_once_not_every_time():
    kept = faults()
    default = faults(MALLOC_TOP_PAD_="131072")  # glibc's own default: a user setting, so the script leaves malloc be
    assert default > 50 * PAGES  # every one of the 60 buffers is a fresh mapping
    assert kept < 10 * PAGES  # the heap grows to hold a few of them, then serves every later one


def test_users_malloc_settings_win():
    assert keep_freed_memory({"MALLOC_MMAP_THRESHOLD_": "65536"}) is False
    assert keep_freed_memory({"MALLOC_TRIM_THRESHOLD_": ""}) is False
