"""A folder of images as an ImageSet: scanned, decoded once in parallel, cached as memory-mapped .npy files.

Layout rules (``data.scan``):
- every PNG/JPEG/WebP/BMP/GIF (first frame) below the root is an image; hidden files and folders are not;
- only regular files are read: symlinks to files are followed; FIFOs, devices, dangling symlinks and
  symlink loops are skipped and reported without being opened;
- first-level sub-folders are classes (sorted names -> indices); with fewer than two, there are no labels;
- ``train/`` and ``test/`` at the root define the splits (classes are their sub-folders); otherwise a
  seeded 90/10 split (``np.random.default_rng(seed)``);
- an optional ``attributes.csv`` at the root gives factors (see ``data.attributes``); images it has no
  row for are dropped and reported as skipped.
Images become ``size x size`` (shorter side scaled, centre cropped), RGB unless every image is grey.
Unreadable files (not an image, truncated, decompression bombs, float pixels) are skipped and reported.
The decoded pixels live in ``cache_root()/folders/<key>/`` (``data.folder_cache``); every load, of the whole
folder or of one split, returns them memory-mapped, so a folder larger than memory loads.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from latentspace.data.decode import IMAGE_FORMATS, ImageDecodeError, decode_image
from latentspace.data.folder_cache import (
    ATTRIBUTES_FILE,
    LOADER_VERSION,
    META,
    NO_ROW,
    LoadReport,
    build_cache,
    cache_key,
    read_cache,
    split_images,
)
from latentspace.data.imageset import ImageSet
from latentspace.data.resize import check_channels, check_size
from latentspace.data.scan import IMAGE_SUFFIXES, FolderScan, scan_folder
from latentspace.utils.files import cache_root
from latentspace.utils.progress import NULL_PROGRESS, Progress

logger = logging.getLogger(__name__)

DEFAULT_SIZE = 64
TEST_FRACTION = 0.1


def seeded_test_mask(n: int, seed: int) -> np.ndarray:
    """bool (n,): a random 10% (rounded) of positions, the same for the same seed."""
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(seed).permutation(n)[: round(n * TEST_FRACTION)]] = True
    return mask


def _with_scan_skips(report: LoadReport, scan: FolderScan) -> LoadReport:
    """The cached report plus the entries this scan refused to open (they are not part of the cache)."""
    if not scan.skipped:
        return report
    return LoadReport(report.n_found + len(scan.skipped), report.n_loaded,
                      tuple(sorted(report.skipped + scan.skipped)))


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
    image is grey) as a copy-on-write memory map (writes stay in this process), labels from class
    folders, factors from attributes.csv, names = relative paths. A split of a folder without ``train/``
    and ``test/`` is written to the cache once per seed, so it is mapped too rather than copied into RAM.
    """
    if split not in (None, "train", "test"):
        raise ValueError(f"split must be None, 'train' or 'test', got {split!r}")
    size = check_size(DEFAULT_SIZE if size is None else size)
    channels = None if channels is None else check_channels(channels)
    scan = scan_folder(path)
    cache_dir = cache_root() / "folders" / cache_key(scan, size, channels)
    if not (cache_dir / META).is_file():
        build_cache(scan, size, channels, cache_dir, progress)
    full, is_test, report = read_cache(cache_dir)
    report = _with_scan_skips(report, scan)
    if report.skipped:
        logger.warning("%s: %s", scan.root, report.summary())
    if split is None:
        return full, report
    tag = split
    if is_test is None:
        is_test, tag = seeded_test_mask(len(full), seed), f"{split}.seed{seed}"
    rows = np.flatnonzero(is_test if split == "test" else ~is_test)
    return full.subset(rows, split=split, images=split_images(cache_dir, full.images, rows, tag)), report


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


__all__ = [
    "ATTRIBUTES_FILE", "DEFAULT_SIZE", "IMAGE_FORMATS", "IMAGE_SUFFIXES", "LOADER_VERSION", "NO_ROW",
    "FolderScan", "ImageDecodeError", "LoadReport", "cache_key", "decode_image", "load_folder",
    "load_folder_report", "scan_folder", "seeded_test_mask",
]
