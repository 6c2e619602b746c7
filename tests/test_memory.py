"""Memory-mapped arrays: released pages leave resident memory and keep their data (utils.memory)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from latentspace.utils.memory import PageWindow, is_mapped, release_pages


def resident_file_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no RssFile in /proc/self/status")


def test_released_pages_leave_resident_memory_and_keep_the_data(tmp_path):
    path = tmp_path / "big.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(64, 1 << 20))
    out[:] = 7
    release_pages(out)  # a shared writable map: flushed to the file first
    del out
    mapped = np.load(path, mmap_mode="c")
    before = resident_file_mb()
    assert int(mapped[:, ::4096].sum()) == 7 * 64 * 256  # touches every page
    touched = resident_file_mb()
    release_pages(mapped[3:9])  # a view releases the whole map behind it
    after = resident_file_mb()
    assert touched - before > 48 and touched - after > 48
    assert int(mapped[:, ::4096].sum()) == 7 * 64 * 256  # the data is still there


def test_only_maps_are_released():
    in_ram = np.ones((4, 4), np.uint8)
    assert not is_mapped(in_ram)
    release_pages(in_ram)  # a no-op
    window = PageWindow(in_ram, None)
    window.touched(1 << 40)
    assert window.arrays == [] and int(in_ram.sum()) == 16
