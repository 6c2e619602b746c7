"""A folder of images as an ImageSet: scanned, decoded once in parallel, cached as a memory-mapped .npy.

Layout rules:
- every PNG/JPEG/WebP/BMP/GIF (first frame) below the root is an image; hidden files and folders are not;
- first-level sub-folders are classes (sorted names -> indices); with fewer than two, there are no labels;
- ``train/`` and ``test/`` at the root define the splits (classes are their sub-folders); otherwise a
  seeded 90/10 split (``np.random.default_rng(seed)``);
- an optional ``attributes.csv`` at the root gives factors (see ``data.attributes``); images it has no
  row for are dropped and reported as skipped.
Images become ``size x size`` (shorter side scaled, centre cropped), RGB unless every image is grey.
Unreadable files (not an image, truncated, decompression bombs) are skipped and reported.
The decoded pixels and their labels/factors/names live in ``cache_root()/folders/<key>/``, where the
key hashes the file list with sizes and mtimes, the size, the channels and ``LOADER_VERSION``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from latentspace.data.attributes import Attributes, read_attributes
from latentspace.utils.files import cache_root
from latentspace.data.imageset import ImageSet
from latentspace.data.resize import check_channels, check_size, convert_channels, fit_square, is_grey, to_rgb
from latentspace.utils.files import atomic_path, read_json, write_json
from latentspace.utils.progress import NULL_PROGRESS, Progress

logger = logging.getLogger(__name__)

LOADER_VERSION = 1
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"})
ATTRIBUTES_FILE = "attributes.csv"
DEFAULT_SIZE = 64
TEST_FRACTION = 0.1
NO_ROW = "no row in attributes.csv"
_CHUNK = 4096  # images copied per step when writing the cache, to bound memory
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError,
                  Image.DecompressionBombWarning)


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


@dataclass(frozen=True)
class FolderScan:
    """The image files under ``root`` in load order (train part first), with labels from their folders.

    files: relative POSIX paths. stats: (bytes, mtime_ns) per file. labels: int64 (N,) or None.
    is_test: bool (N,) when ``train/`` and ``test/`` define the splits, else None.
    """

    root: Path
    files: tuple[str, ...]
    stats: tuple[tuple[int, int], ...]
    labels: np.ndarray | None
    class_names: tuple[str, ...]
    is_test: np.ndarray | None


def _walk_images(top: Path) -> list[tuple[str, tuple[int, int]]]:
    """(path relative to ``top``, (bytes, mtime_ns)) of every image file below ``top``, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for fname in filenames:
            if fname.startswith(".") or Path(fname).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            full = Path(dirpath, fname)
            st = full.stat()
            found.append((full.relative_to(top).as_posix(), (st.st_size, st.st_mtime_ns)))
    return sorted(found)


def scan_folder(path: str | Path) -> FolderScan:
    """List the images under ``path`` and derive their class labels and train/test membership."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder of images")
    has_splits = (root / "train").is_dir() and (root / "test").is_dir()
    parts = [("train", root / "train"), ("test", root / "test")] if has_splits else [("", root)]
    files, stats, classes, is_test = [], [], [], []
    for part, top in parts:
        for rel, stat in _walk_images(top):
            files.append(f"{part}/{rel}" if part else rel)
            stats.append(stat)
            classes.append(rel.split("/")[0] if "/" in rel else None)
            is_test.append(part == "test")
    if not files:
        raise ValueError(f"{root}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) found")
    labels, class_names = _labels(root, files, classes)
    return FolderScan(root, tuple(files), tuple(stats), labels, class_names,
                      np.array(is_test) if has_splits else None)


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


def cache_key(scan: FolderScan, size: int, channels: int | None) -> str:
    """Hash of everything the decoded cache depends on (files, their sizes/mtimes, attributes.csv, options)."""
    csv_path = scan.root / ATTRIBUTES_FILE
    csv_stat = [csv_path.stat().st_size, csv_path.stat().st_mtime_ns] if csv_path.is_file() else None
    blob = json.dumps([LOADER_VERSION, size, channels or "auto", scan.files, scan.stats, csv_stat])
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def decode_image(path: Path, size: int) -> np.ndarray:
    """One image file -> uint8 (3, size, size) RGB, shorter side scaled to ``size``, centre cropped."""
    with Image.open(path) as img:
        limit = Image.MAX_IMAGE_PIXELS
        if limit and img.width * img.height > limit:
            raise Image.DecompressionBombError(f"{img.width}x{img.height} pixels is over the limit of {limit}")
        img.draft(None, (size, size))  # JPEG: let the decoder shrink by 1/2..1/8 while still covering size
        if img.getexif().get(0x0112, 1) != 1:  # EXIF orientation: camera photos stored sideways
            img = ImageOps.exif_transpose(img)
        return np.asarray(fit_square(to_rgb(img), size)).transpose(2, 0, 1)


def _reason(error: Exception) -> str:
    if isinstance(error, UnidentifiedImageError):
        return "cannot identify image"
    if isinstance(error, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return "decompression bomb"
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return "truncated" if "truncated" in text.lower() else text[:80]


def _decode_one(path: Path, size: int) -> np.ndarray | str:
    """Decoded pixels, or the reason the file was skipped."""
    try:
        return decode_image(path, size)
    except _DECODE_ERRORS as e:  # one bad file must not stop the other 200,000
        return _reason(e)


def _decode_all(root: Path, files: list[str], out: np.ndarray, progress: Progress) -> list[str | None]:
    """Decode ``files`` into ``out`` (N, 3, S, S) with a thread pool; return the skip reason per file."""
    reasons: list[str | None] = [None] * len(files)
    progress.start(len(files), "decoding images")
    # Filters are process-wide: set once here (not per thread) and restored when the pool is done.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            paths = [root / f for f in files]
            for i, result in enumerate(pool.map(_decode_one, paths, repeat(out.shape[-1]))):
                if isinstance(result, str):
                    reasons[i] = result
                else:
                    out[i] = result
                progress.advance()
    return reasons


def _write_images(dest: Path, src: np.ndarray, rows: np.ndarray, channels: int) -> None:
    """Write ``src[rows]`` converted to ``channels`` as an .npy at ``dest`` atomically, chunk by chunk."""
    shape = (len(rows), channels) + src.shape[2:]
    with atomic_path(dest) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        for start in range(0, len(rows), _CHUNK):
            out[start:start + _CHUNK] = convert_channels(src[rows[start:start + _CHUNK]], channels)
        out.flush()
        del out


def _choose_channels(src: np.ndarray, rows: np.ndarray, channels: int | None) -> int:
    if channels is not None:
        return channels
    grey = all(is_grey(src[rows[s:s + _CHUNK]]) for s in range(0, len(rows), _CHUNK))
    return 1 if grey else 3


def _build_cache(scan: FolderScan, size: int, channels: int | None, cache_dir: Path, progress: Progress) -> None:
    """Decode the folder and write images.npy, labels/factors/is_test .npy and meta.json (last) to cache_dir."""
    csv_path = scan.root / ATTRIBUTES_FILE
    attrs = read_attributes(csv_path, scan.files) if csv_path.is_file() else None
    wanted = np.ones(len(scan.files), dtype=bool) if attrs is None else attrs.has_row
    todo = [f for f, w in zip(scan.files, wanted) if w]
    if not todo:
        raise ValueError(f"{csv_path}: no row names any of the {len(scan.files)} images (e.g. {scan.files[0]}); "
                         "the filename column must hold paths relative to the folder or base names")
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, raw_path = tempfile.mkstemp(prefix=".raw.", suffix=".npy", dir=cache_dir)
    os.close(fd)
    try:
        raw = np.lib.format.open_memmap(raw_path, mode="w+", dtype=np.uint8, shape=(len(todo), 3, size, size))
        reasons = _decode_all(scan.root, todo, raw, progress)
        ok = np.array([r is None for r in reasons], dtype=bool)
        if not ok.any():
            raise ValueError(f"{scan.root}: none of the {len(scan.files)} image files could be read")
        rows = np.flatnonzero(ok)
        _write_images(cache_dir / "images.npy", raw, rows, _choose_channels(raw, rows, channels))
        del raw
    finally:
        os.unlink(raw_path)
    keep = np.flatnonzero(wanted)[ok]  # positions in scan.files of the loaded images
    skipped = [(f, NO_ROW) for f, w in zip(scan.files, wanted) if not w]
    skipped += [(f, r) for f, r in zip(todo, reasons) if r is not None]
    _write_side_files(scan, attrs, keep, sorted(skipped), cache_dir)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
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
    write_json(cache_dir / "meta.json", {
        "version": LOADER_VERSION,
        "name": scan.root.name,
        "names": [scan.files[i] for i in keep],
        "class_names": list(scan.class_names),
        "factor_names": list(attrs.factor_names) if has_factors else [],
        "factor_values": {k: list(v) for k, v in attrs.factor_values.items()} if has_factors else {},
        "n_found": len(scan.files),
        "skipped": [list(s) for s in skipped],
    })


def _read_cache(cache_dir: Path) -> tuple[ImageSet, np.ndarray | None, LoadReport]:
    """The full set, its is_test mask (or None) and the report, from a complete cache folder."""
    meta = read_json(cache_dir / "meta.json")

    def optional(name: str) -> np.ndarray | None:
        p = cache_dir / f"{name}.npy"
        return np.load(p, allow_pickle=False) if p.is_file() else None

    # Copy-on-write mapping: pages load on demand, and callers may write without touching the cache.
    images = np.load(cache_dir / "images.npy", mmap_mode="c", allow_pickle=False)
    factors = optional("factors")
    full = ImageSet(
        images=images, name=meta["name"], labels=optional("labels"), class_names=tuple(meta["class_names"]),
        factors=factors, factor_names=tuple(meta["factor_names"]),
        factor_values={k: tuple(v) for k, v in meta["factor_values"].items()}, names=tuple(meta["names"]),
    )
    report = LoadReport(meta["n_found"], len(full), tuple(tuple(s) for s in meta["skipped"]))
    return full, optional("is_test"), report


def seeded_test_mask(n: int, seed: int) -> np.ndarray:
    """bool (n,): a random 10% (rounded) of positions, the same for the same seed."""
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(seed).permutation(n)[: round(n * TEST_FRACTION)]] = True
    return mask


def load_folder_report(
    path: str | Path,
    split: str | None = None,
    size: int | None = None,
    channels: int | None = None,
    seed: int = 0,
    progress: Progress = NULL_PROGRESS,
) -> tuple[ImageSet, LoadReport]:
    """Load an image folder (decoding only on the first call) and say which files were skipped and why.

    Returns images uint8 (N, C, size, size) (default size 64; C = ``channels``, default 3 unless every
    image is grey), labels from class folders, factors from attributes.csv, names = relative paths.
    """
    if split not in (None, "train", "test"):
        raise ValueError(f"split must be None, 'train' or 'test', got {split!r}")
    size = check_size(DEFAULT_SIZE if size is None else size)
    channels = None if channels is None else check_channels(channels)
    scan = scan_folder(path)
    cache_dir = cache_root() / "folders" / cache_key(scan, size, channels)
    if not (cache_dir / "meta.json").is_file():
        _build_cache(scan, size, channels, cache_dir, progress)
    full, is_test, report = _read_cache(cache_dir)
    if report.skipped:
        logger.warning("%s: %s", scan.root, report.summary())
    if split is None:
        return full, report
    if is_test is None:
        is_test = seeded_test_mask(len(full), seed)
    return full.subset(np.flatnonzero(is_test if split == "test" else ~is_test), split=split), report


def load_folder(
    path: str | Path,
    split: str | None = None,
    size: int | None = None,
    channels: int | None = None,
    seed: int = 0,
    progress: Progress = NULL_PROGRESS,
) -> ImageSet:
    """``load_folder_report`` without the report (skipped files are logged as a warning)."""
    return load_folder_report(path, split=split, size=size, channels=channels, seed=seed, progress=progress)[0]
