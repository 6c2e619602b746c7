"""Memory-mapped arrays larger than memory: drop the pages this process has touched.

Reading or writing a file through a memory map counts every touched page as the process's resident memory until
the map goes away, so one pass over a 100,000-image cache would hold all of it. ``release_pages`` tells the kernel
this process no longer needs them: the data stays in the file (and usually in the page cache, so a later read is
cheap), and resident memory stays bounded by what was touched since the last call.
"""
from __future__ import annotations

import mmap
from typing import Any

import numpy as np

# Bytes read or written between two releases. The kernel maps up to 16 neighbouring pages on each fault
# ("fault-around"), so random rows keep several times this resident: 64 MB measured as up to 400 MB.
WINDOW_BYTES = 32 << 20


def _mapping(array: Any) -> mmap.mmap | None:
    while array is not None:
        m = getattr(array, "_mmap", None)  # np.memmap (views have None and point to it through .base)
        if isinstance(m, mmap.mmap):
            return m
        if isinstance(array, mmap.mmap):
            return array
        array = getattr(array, "base", None)
    return None


def is_mapped(array: Any) -> bool:
    return _mapping(array) is not None


def release_pages(array: Any) -> None:
    """Drop the resident pages behind ``array`` if it is (a view of) a memory map; a no-op otherwise.

    Writes through a shared map are flushed to the file first. Never call it on a copy-on-write map (np.load's
    mmap_mode="c") that someone has written to: those private changes would be dropped with the pages.
    """
    m = _mapping(array)
    if m is None or not hasattr(mmap, "MADV_DONTNEED"):
        return
    if isinstance(array, np.memmap) and array.flags.writeable and getattr(array, "mode", "") == "w+":
        array.flush()
    try:
        m.madvise(mmap.MADV_DONTNEED)
    except (OSError, ValueError):  # a closed map, or a platform without the advice: memory is then just not dropped
        pass


class PageWindow:
    """Call ``touched(nbytes)`` after each chunk read or written through a map; every WINDOW_BYTES it releases the
    pages of ``arrays``."""

    def __init__(self, *arrays: Any, window: int = WINDOW_BYTES) -> None:
        self.arrays = [a for a in arrays if is_mapped(a)]
        self.window = window
        self._since = 0

    def touched(self, nbytes: int) -> None:
        if not self.arrays:
            return
        self._since += nbytes
        if self._since >= self.window:
            self.release()

    def release(self) -> None:
        for a in self.arrays:
            release_pages(a)
        self._since = 0
