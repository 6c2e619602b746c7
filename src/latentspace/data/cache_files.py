"""Files of a cache folder that several processes may build at once and that a killed build must not litter.

- Every temporary file is named ``.partial~<host>~<pid>~<random>~<final name>``, so a later build can tell
  a dead build's leftovers (this host, process gone) from a live build's and delete them (``sweep_stale``);
  leftovers of another host (a cache shared over NFS) go once they are a day old.
- A file appears under its final name only whole (fsync, then rename), so a reader sees the old file or
  the new one, never a mixture; the caller writes its commit marker (``meta.json``) last.
- ``build_lock(folder)`` serialises the builders of one folder with an flock, which the kernel releases if
  the process dies: a second builder waits, then finds the work done and only reads it.
"""
from __future__ import annotations

import logging
import os
import secrets
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

if sys.platform != "win32":
    import fcntl

logger = logging.getLogger(__name__)

PARTIAL = ".partial"
STALE_AFTER_S = 24 * 3600  # a temp file untouched this long belongs to no live build, whoever made it
LEGACY_STALE_AFTER_S = 3600  # LOADER_VERSION 1 temps (".raw.*", ".*.tmp") carry no pid: judged by age alone
_HOST = socket.gethostname().replace("~", "-")


def temp_path(dest: Path) -> Path:
    """A fresh temp name beside ``dest`` that says which host and process own it."""
    return dest.parent / f"{PARTIAL}~{_HOST}~{os.getpid()}~{secrets.token_hex(6)}~{dest.name}"


@contextmanager
def atomic_file(dest: Path) -> Iterator[Path]:
    """Yield a temp path beside ``dest`` to write; on success fsync it and rename it onto ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(dest)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    finally:
        with suppress(FileNotFoundError):  # already renamed, or the writer failed before creating it
            os.unlink(tmp)


@contextmanager
def build_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (created if missing) for the ``with`` block."""
    folder.mkdir(parents=True, exist_ok=True)
    if sys.platform == "win32":  # no flock: concurrent builders then repeat the work, still never corrupt it
        yield
        return
    with open(folder / ".lock", "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate the process there
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's process
        return True
    return True


def is_stale(path: Path, now: float) -> bool:
    """Whether ``path`` is a temp file that no live build can still be writing."""
    name = path.name
    try:
        age = now - path.stat().st_mtime
    except FileNotFoundError:  # renamed or swept by its owner meanwhile
        return False
    if name.startswith(PARTIAL + "~"):
        parts = name.split("~", 4)
        if len(parts) == 5 and parts[1] == _HOST and parts[2].isdigit() and not _pid_alive(int(parts[2])):
            return True
        return age > STALE_AFTER_S
    legacy = name.startswith(".raw.") or (name.startswith(".") and name.endswith(".tmp"))
    return legacy and age > LEGACY_STALE_AFTER_S


def sweep_stale(top: Path) -> list[Path]:
    """Delete stale temp files in the sub-folders of ``top`` (one cache folder per key); return them."""
    if not top.is_dir():
        return []
    now, removed = time.time(), []
    for folder in top.iterdir():
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.name.startswith(".") and is_stale(path, now):
                with suppress(FileNotFoundError):  # another sweeper got there first
                    path.unlink()
                    removed.append(path)
    if removed:
        logger.info("removed %d temp files of interrupted cache builds under %s", len(removed), top)
    return removed
