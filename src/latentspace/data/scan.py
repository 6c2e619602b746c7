"""The layout of an image folder: which files are images, their classes and splits, and what to skip.

- every PNG/JPEG/WebP/BMP/GIF below the root is an image; hidden files and folders are not;
- only regular files are read. A symlink to a regular file is followed (a folder of links into a photo
  library is a normal way to curate a dataset) and keyed by its target; a FIFO, socket or device, a
  dangling symlink and a symlink loop are skipped and reported. Symlinked folders are not entered, so a
  loop of folders cannot make the walk endless;
- first-level sub-folders are classes (sorted names -> indices); with fewer than two, there are no labels;
- ``train/`` and ``test/`` at the root define the splits (classes are their sub-folders).
"""
from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"})
NOT_REGULAR = "not a regular file"
SYMLINK_LOOP = "symlink loop"
DANGLING = "dangling symlink"


@dataclass(frozen=True)
class FolderScan:
    """The image files under ``root`` in load order (train part first), with labels from their folders.

    files: relative POSIX paths of regular files. stats: (bytes, mtime_ns, ctime_ns, inode, device) per
    file, of the symlink's target for a link. labels: int64 (N,) or None. is_test: bool (N,) when ``train/`` and
    ``test/`` define the splits, else None. skipped: (relative path, reason) of image-named entries that
    are not readable files (FIFOs, devices, dangling links, loops); they are never opened.
    """

    root: Path
    files: tuple[str, ...]
    stats: tuple[tuple[int, int, int, int, int], ...]
    labels: np.ndarray | None
    class_names: tuple[str, ...]
    is_test: np.ndarray | None
    skipped: tuple[tuple[str, str], ...] = ()


def open_regular(path: str | os.PathLike) -> BinaryIO | None:
    """``path`` opened for binary reading, or None (and nothing read) when it is not a regular file.

    O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever; on a regular file the
    flag changes nothing. Missing files and permission problems raise OSError as open() does.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return os.fdopen(fd, "rb")


def file_identity(path: Path) -> tuple[int, int, int, int, int] | str:
    """(bytes, mtime_ns, ctime_ns, inode, device) of a regular file (following symlinks), or why it is not one.

    ctime: an edit that keeps the size and puts the old mtime back (``touch -r``, ``rsync -t``) still
    changes it; nothing but the kernel can set it.
    """
    try:
        st = os.stat(path)
    except OSError as e:  # stat is the only way to ask; its errno says which kind of broken entry this is
        if e.errno == errno.ELOOP:
            return SYMLINK_LOOP
        if e.errno == errno.ENOENT and os.path.islink(path):
            return DANGLING
        return (e.strerror or type(e).__name__).lower()
    if not stat.S_ISREG(st.st_mode):
        return NOT_REGULAR
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def _walk_images(top: Path) -> tuple[list[tuple[str, tuple[int, ...]]], list[tuple[str, str]]]:
    """(path relative to ``top``, identity) of every regular image file below ``top``, sorted, and
    (path, reason) of the image-named entries that are not regular files."""
    found, skipped = [], []
    for dirpath, dirnames, filenames in os.walk(top):  # followlinks=False: linked folders are not entered
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for fname in filenames:
            if fname.startswith(".") or Path(fname).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            full = Path(dirpath, fname)
            rel = full.relative_to(top).as_posix()
            identity = file_identity(full)
            if isinstance(identity, str):
                skipped.append((rel, identity))
            else:
                found.append((rel, identity))
    return sorted(found), sorted(skipped)


def scan_folder(path: str | Path) -> FolderScan:
    """List the images under ``path`` and derive their class labels and train/test membership."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder of images")
    has_splits = (root / "train").is_dir() and (root / "test").is_dir()
    parts = [("train", root / "train"), ("test", root / "test")] if has_splits else [("", root)]
    files, stats, classes, is_test, skipped = [], [], [], [], []
    for part, top in parts:
        found, bad = _walk_images(top)
        for rel, identity in found:
            files.append(f"{part}/{rel}" if part else rel)
            stats.append(identity)
            classes.append(rel.split("/")[0] if "/" in rel else None)
            is_test.append(part == "test")
        skipped += [(f"{part}/{rel}" if part else rel, reason) for rel, reason in bad]
    if not files:
        also = f"; skipped {len(skipped)} unreadable, e.g. {skipped[0][0]} ({skipped[0][1]})" if skipped else ""
        raise ValueError(f"{root}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) found{also}")
    labels, class_names = _labels(root, files, classes)
    return FolderScan(root, tuple(files), tuple(stats), labels, class_names,
                      np.array(is_test) if has_splits else None, tuple(skipped))


def _labels(root: Path, files: list[str], classes: list[str | None]) -> tuple[np.ndarray | None, tuple[str, ...]]:
    """Class indices from first-level folder names; one folder (or none) means unlabelled."""
    class_names = tuple(sorted({c for c in classes if c is not None}))
    if len(class_names) < 2:
        return None, ()
    loose = [f for f, c in zip(files, classes) if c is None]
    if loose:
        raise ValueError(
            f"{root}: {len(loose)} images (e.g. {loose[0]}) sit beside the class folders "
            f"{', '.join(class_names[:5])}; move them into a class folder or remove them"
        )
    index = {c: i for i, c in enumerate(class_names)}
    return np.array([index[c] for c in classes], dtype=np.int64), class_names
