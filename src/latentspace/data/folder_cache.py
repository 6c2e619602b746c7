"""The decoded cache of an image folder: built once, in bounded memory, by one process at a time; read as maps.

``cache_root()/folders/<key>/`` holds ``images.npy`` (N, C, S, S) uint8, ``labels.npy``, ``factors.npy`` and
``is_test.npy`` (when there are any), ``images.<split>.seed<seed>.npy`` for each seeded split asked for,
and ``meta.json``, written last: the cache is complete when it exists (see ``data.cache_files``).

The key hashes what the cached pixels and names depend on: the resolved folder path (two folders whose
files agree on names, sizes and times are still two datasets), each file's path and identity (bytes,
mtime_ns, ctime_ns, inode, device: a file edited in place or replaced by another changes it),
attributes.csv's identity, the size, the channels and ``LOADER_VERSION``.

Memory does not grow with the folder: images are decoded by a thread pool with at most ``IN_FLIGHT_BYTES``
of submitted-but-unstored images, into a memory-mapped temp file, and every later pass copies ``CHUNK``
images at a time. (Each thread may still hold one full-size image while decoding it, up to
``Image.MAX_IMAGE_PIXELS``.)
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from latentspace.data.attributes import Attributes, read_attributes
from latentspace.data.cache_files import atomic_file, build_lock, sweep_stale, temp_path
from latentspace.data.decode import ImageDecodeError, decode_image
from latentspace.data.imageset import ImageSet
from latentspace.data.resize import convert_channels, is_grey
from latentspace.data.scan import FolderScan, file_identity
from latentspace.utils.files import read_json
from latentspace.utils.memory import PageWindow
from latentspace.utils.progress import Progress

LOADER_VERSION = 2  # 2: 16-bit grey scaled, not clipped; per-split image files
ATTRIBUTES_FILE = "attributes.csv"
META = "meta.json"
NO_ROW = "no row in attributes.csv"
CHUNK = 4096  # images copied per step when writing the cache
IN_FLIGHT_BYTES = 64 << 20  # decoded pixels that may wait in memory for their turn to be stored


@dataclass(frozen=True)
class LoadReport:
    """What a folder load found: ``n_found`` image files, ``n_loaded`` images, ``skipped`` (name, reason)."""

    n_found: int
    n_loaded: int
    skipped: tuple[tuple[str, str], ...] = ()

    def summary(self, limit: int = 10) -> str:
        """One line: 'skipped 2 of 7 files: a.png (cannot identify image), b.jpg (truncated)'."""
        shown = ", ".join(f"{name} ({reason})" for name, reason in self.skipped[:limit])
        more = f", and {len(self.skipped) - limit} more" if len(self.skipped) > limit else ""
        return f"skipped {len(self.skipped)} of {self.n_found} files: {shown}{more}"


def cache_key(scan: FolderScan, size: int, channels: int | None) -> str:
    """Hash of everything the decoded cache depends on (see the module docstring)."""
    csv_path = scan.root / ATTRIBUTES_FILE
    csv_id = file_identity(csv_path) if csv_path.is_file() else None
    blob = json.dumps([LOADER_VERSION, str(scan.root), size, channels or "auto", scan.files, scan.stats, csv_id])
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def decode_or_reason(path: Path, size: int) -> np.ndarray | str:
    """Decoded pixels, or the reason the file was skipped."""
    try:
        return decode_image(path, size)
    except ImageDecodeError as e:  # one bad file must not stop the other 200,000
        return e.reason
    except OSError as e:  # deleted or made unreadable since the scan
        return (e.strerror or type(e).__name__).lower()


def _decode_all(root: Path, files: list[str], out: np.ndarray, progress: Progress) -> list[str | None]:
    """Decode ``files`` into ``out`` (N, 3, S, S) with a thread pool; return the skip reason per file."""
    reasons: list[str | None] = [None] * len(files)
    pages = PageWindow(out)

    def store(item: tuple[int, Future]) -> None:
        i, result = item[0], item[1].result()
        if isinstance(result, str):
            reasons[i] = result
        else:
            out[i] = result
            pages.touched(result.nbytes)
        progress.advance()

    workers = os.cpu_count() or 1
    window = max(2 * workers, IN_FLIGHT_BYTES // out[:1].nbytes)  # enough to keep every thread busy
    progress.start(len(files), "decoding images")
    # Filters are process-wide: set once here (not per thread) and restored when the pool is done.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            # Submitted in order and stored in order, never more than ``window`` at once: pool.map would submit
            # every file up front, and finished images would pile up in memory behind a slow one.
            pending: deque[tuple[int, Future]] = deque()
            for i, rel in enumerate(files):
                if len(pending) >= window:
                    store(pending.popleft())
                pending.append((i, pool.submit(decode_or_reason, root / rel, out.shape[-1])))
            while pending:
                store(pending.popleft())
    return reasons


def _write_rows(dest: Path, src: np.ndarray, rows: np.ndarray, channels: int | None = None) -> None:
    """Write ``src[rows]`` (converted to ``channels`` if given) as an .npy at ``dest`` atomically, by chunks."""
    shape = (len(rows), channels or src.shape[1]) + src.shape[2:]
    with atomic_file(dest) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        pages = PageWindow(src, out)  # both maps would otherwise stay resident: twice the folder in memory
        for start in range(0, len(rows), CHUNK):
            block = src[rows[start:start + CHUNK]]
            out[start:start + CHUNK] = block if channels is None else convert_channels(block, channels)
            pages.touched(2 * block.nbytes)
        out.flush()
        del out


def _choose_channels(src: np.ndarray, rows: np.ndarray, channels: int | None) -> int:
    if channels is not None:
        return channels
    pages = PageWindow(src)
    for s in range(0, len(rows), CHUNK):
        block = src[rows[s:s + CHUNK]]
        pages.touched(block.nbytes)
        if not is_grey(block):
            return 3
    return 1


def build_cache(scan: FolderScan, size: int, channels: int | None, cache_dir: Path, progress: Progress) -> None:
    """Make the cache in ``cache_dir`` unless another process finished it while this one waited its turn."""
    with build_lock(cache_dir):
        if (cache_dir / META).is_file():
            return
        sweep_stale(cache_dir.parent)
        _build(scan, size, channels, cache_dir, progress)


def _build(scan: FolderScan, size: int, channels: int | None, cache_dir: Path, progress: Progress) -> None:
    """Decode the folder and write images.npy, labels/factors/is_test .npy and meta.json (last) to cache_dir."""
    csv_path = scan.root / ATTRIBUTES_FILE
    attrs = read_attributes(csv_path, scan.files) if csv_path.is_file() else None
    wanted = np.ones(len(scan.files), dtype=bool) if attrs is None else attrs.has_row
    todo = [f for f, w in zip(scan.files, wanted) if w]
    if not todo:
        raise ValueError(f"{csv_path}: no row names any of the {len(scan.files)} images (e.g. {scan.files[0]}); "
                         "the filename column must hold paths relative to the folder or base names")
    raw_path = temp_path(cache_dir / "raw.npy")  # named for this process: a killed build's is swept later
    try:
        raw = np.lib.format.open_memmap(raw_path, mode="w+", dtype=np.uint8, shape=(len(todo), 3, size, size))
        reasons = _decode_all(scan.root, todo, raw, progress)
        ok = np.array([r is None for r in reasons], dtype=bool)
        if not ok.any():
            raise ValueError(f"{scan.root}: none of the {len(scan.files)} image files could be read")
        rows = np.flatnonzero(ok)
        _write_rows(cache_dir / "images.npy", raw, rows, _choose_channels(raw, rows, channels))
        del raw
    finally:
        raw_path.unlink(missing_ok=True)
    keep = np.flatnonzero(wanted)[ok]  # positions in scan.files of the loaded images
    skipped = [(f, NO_ROW) for f, w in zip(scan.files, wanted) if not w]
    skipped += [(f, r) for f, r in zip(todo, reasons) if r is not None]
    _write_side_files(scan, attrs, keep, sorted(skipped), cache_dir)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)


def _write_side_files(scan: FolderScan, attrs: Attributes | None, keep: np.ndarray, skipped, cache_dir: Path) -> None:
    has_factors = attrs is not None and len(attrs.factor_names) > 0
    if scan.labels is not None:
        _save_npy(cache_dir / "labels.npy", scan.labels[keep])
    if has_factors:
        _save_npy(cache_dir / "factors.npy", attrs.factors[keep])
    if scan.is_test is not None:
        _save_npy(cache_dir / "is_test.npy", scan.is_test[keep])
    meta = {
        "version": LOADER_VERSION,
        "name": scan.root.name,
        "names": [scan.files[i] for i in keep],
        "class_names": list(scan.class_names),
        "factor_names": list(attrs.factor_names) if has_factors else [],
        "factor_values": {k: list(v) for k, v in attrs.factor_values.items()} if has_factors else {},
        "n_found": len(scan.files),
        "skipped": [list(s) for s in skipped],
    }
    with atomic_file(cache_dir / META) as tmp:  # last: its presence says every other file is complete
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_cache(cache_dir: Path) -> tuple[ImageSet, np.ndarray | None, LoadReport]:
    """The full set, its is_test mask (or None) and the report, from a complete cache folder."""
    meta = read_json(cache_dir / META)

    def optional(name: str) -> np.ndarray | None:
        p = cache_dir / f"{name}.npy"
        return np.load(p, allow_pickle=False) if p.is_file() else None

    # Copy-on-write mapping: pages load on demand, and callers may write without touching the cache.
    images = np.load(cache_dir / "images.npy", mmap_mode="c", allow_pickle=False)
    full = ImageSet(
        images=images, name=meta["name"], labels=optional("labels"), class_names=tuple(meta["class_names"]),
        factors=optional("factors"), factor_names=tuple(meta["factor_names"]),
        factor_values={k: tuple(v) for k, v in meta["factor_values"].items()}, names=tuple(meta["names"]),
    )
    report = LoadReport(meta["n_found"], len(full), tuple(tuple(s) for s in meta["skipped"]))
    return full, optional("is_test"), report


def split_images(cache_dir: Path, images: np.ndarray, rows: np.ndarray, tag: str) -> np.ndarray:
    """``images[rows]`` (rows ascending) as a memory map, never a copy in RAM: a slice of ``images`` when the
    rows are contiguous (``train/``+``test/`` folders), else ``images.<tag>.npy``, written once per tag."""
    if len(rows) == 0 or rows[-1] - rows[0] + 1 == len(rows):
        return images[rows[0]:rows[-1] + 1] if len(rows) else images[:0]
    path = cache_dir / f"images.{tag}.npy"
    if not path.is_file():
        with build_lock(cache_dir):
            if not path.is_file():
                sweep_stale(cache_dir.parent)
                _write_rows(path, images, rows)
    return np.load(path, mmap_mode="c", allow_pickle=False)
