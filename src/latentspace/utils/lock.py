"""One writer per folder: an OS-level lock (flock) that the kernel releases when its process dies.

A lock file that outlives a crash is harmless: the lock is on the open file, not on the file existing, so
kill -9 never leaves a folder locked. The file holds who took the lock, for the message the next writer gets.
"""
from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

LOCK_FILE = ".lock"

try:
    import fcntl
except ImportError:  # Windows: no flock; the lock degrades to nothing rather than refusing every run
    fcntl = None  # type: ignore[assignment]


class FolderInUse(ValueError):
    """Another live process holds the folder's lock."""


class FolderLock:
    """Exclusive lock on ``folder`` (created if absent) for the life of the ``with`` block or the process."""

    def __init__(self, folder: str | os.PathLike, purpose: str) -> None:
        self.folder = Path(folder)
        self.purpose = purpose
        self._fd: int | None = None

    def acquire(self) -> "FolderLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_holder(fd)
                os.close(fd)
                raise FolderInUse(f"{self.folder}: in use by {holder}; one writer at a time: wait for it to end "
                                  "or stop it") from None
        os.ftruncate(fd, 0)
        os.write(fd, _holder_text(self.purpose).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # the holder's text would otherwise name a process that is gone
            os.close(self._fd)  # closing releases the flock
            self._fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder_text(purpose: str) -> str:
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200] if sys.argv else "python"
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"{purpose} (pid {os.getpid()} on {socket.gethostname()}, since {started}: {command})"


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 400, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "another process"
