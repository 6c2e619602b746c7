"""MNIST, Fashion-MNIST and KMNIST from their IDX files: find them, download them if absent, parse them.

Files are looked up, in order, in ``data_dir`` (or ``data_dir/<name>``), ``$LATENTSPACE_DATA/<name>``
and ``cache_root()/<name>``; gzipped or raw, spelled ``train-images-idx3-ubyte`` or
``train-images.idx3-ubyte``. Missing files are downloaded into the cache from ``MIRRORS`` and checked
against the official MD5 (only then: a valid re-compressed or raw copy loads too). Every file is checked
for structure (magic number, dimensions, byte length, matching counts) before use; the header is checked
before the body is decompressed, so a gzip bomb is refused at once (``read_idx``).
"""
from __future__ import annotations

import gzip
import hashlib
import logging
import math
import os
import struct
import urllib.request
import zlib
from collections.abc import Sequence
from http.client import HTTPException
from pathlib import Path
from typing import BinaryIO

import numpy as np

from latentspace.data.imageset import ImageSet
from latentspace.utils.files import cache_root
from latentspace.data.resize import check_channels, convert_channels, resize_images
from latentspace.data.scan import NOT_REGULAR, open_regular
from latentspace.utils.files import atomic_path

logger = logging.getLogger(__name__)

IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
IMAGE_SIDE = 28
MAX_IDX_BYTES = 1 << 28  # 256 MiB: over 5x the largest supported file (MNIST train images, 47 MB)
_READ_BLOCK = 1 << 20
_DEFLATE_MAX_RATIO = 1032  # deflate never expands more than this (258-byte matches in 2 bits), even multi-member
DOWNLOAD_TIMEOUT_S = 30.0
# (images, labels) file stems per split, as the official sites name them (plus ".gz").
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
ALL_FILES = SPLIT_FILES["train"] + SPLIT_FILES["test"]

CLASS_NAMES = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    "kmnist": ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
}
# MD5 of the official .gz files, in ALL_FILES order.
MD5 = {
    "mnist": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
              "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"),
    "fashion-mnist": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                      "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"),
    "kmnist": ("bdb82020997e1d708af4cf47b453dcf7", "e144d726b3acfaa3e44228e80efcd344",
               "5c965bf0a639b31b8f53240b1b52f4d7", "7320c461ea6c1c855c0b718fb2a4b134"),
}
# Base URLs tried in order; replace (or pass mirrors=) to download from elsewhere, e.g. file:// in tests.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    "kmnist": ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
}


def search_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for ``name``'s files, in order (existing or not)."""
    dirs: list[Path] = []
    if data_dir is not None:
        dirs += [Path(data_dir).expanduser(), Path(data_dir).expanduser() / name]
    if os.environ.get("LATENTSPACE_DATA"):
        dirs.append(Path(os.environ["LATENTSPACE_DATA"]).expanduser() / name)
    dirs.append(cache_root() / name)
    return list(dict.fromkeys(dirs))


def find_file(stem: str, dirs: Sequence[Path]) -> Path | None:
    """The first existing spelling of ``stem`` (gz or raw, ``-idx`` or ``.idx``) in ``dirs``, else None."""
    spellings = dict.fromkeys([stem, stem.replace("-idx", ".idx")])
    for d in dirs:
        for s in spellings:
            for candidate in (d / f"{s}.gz", d / s):
                if candidate.is_file():
                    return candidate
    return None


def _dims(head: bytes, source: str | os.PathLike, magic: int, max_bytes: int) -> tuple[int, ...]:
    """The shape an IDX header declares, checked before any of the body is read (or decompressed)."""
    kind = "images" if magic == IMAGE_MAGIC else "labels"
    if len(head) < 4 or int.from_bytes(head[:4], "big") != magic:
        got = int.from_bytes(head[:4], "big") if len(head) >= 4 else f"{len(head)} bytes"
        raise ValueError(f"{source}: bad IDX magic number {got}, expected {magic} ({kind}, unsigned bytes)")
    ndim = magic & 0xFF
    if len(head) < 4 + 4 * ndim:
        raise ValueError(f"{source}: truncated IDX header ({len(head)} of {4 + 4 * ndim} bytes)")
    dims = struct.unpack(f">{ndim}I", head[4:4 + 4 * ndim])
    # max(d, 1): a zero dimension makes the body empty but the shape must still be a sane one to build.
    if math.prod(max(d, 1) for d in dims) > max_bytes:
        raise ValueError(f"{source}: header says {kind} of shape {dims}, over the limit of {max_bytes} bytes "
                         "(corrupt, or not one of the supported datasets)")
    return dims


def _size_error(source, magic: int, dims: tuple[int, ...], holds: int | None, bound: str = "") -> ValueError:
    """holds: the bytes the file has (None: more than declared); bound: "at most " when only a bound is known."""
    kind = "images" if magic == IMAGE_MAGIC else "labels"
    expected = 4 + 4 * len(dims) + math.prod(dims)
    what = "has trailing bytes" if holds is None or holds > expected else "truncated"
    held = "more" if holds is None else f"{bound}{holds}"
    return ValueError(f"{source}: {what}: header says {kind} of shape {dims} = {expected} bytes, file holds {held}")


def parse_idx(data: bytes, source: str | os.PathLike, magic: int, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Decompressed IDX bytes -> uint8 array of the header's shape; any structural problem is a ValueError."""
    dims = _dims(data[:4 + 4 * (magic & 0xFF)], source, magic, max_bytes)
    header = 4 + 4 * len(dims)
    if len(data) != header + math.prod(dims):
        raise _size_error(source, magic, dims, len(data))
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def _read_body(stream: BinaryIO, source: Path, magic: int, max_bytes: int, at_most: int, bound: str) -> np.ndarray:
    """Header, then exactly the declared body and one byte more (to tell trailing bytes), from a stream that
    can yield at most ``at_most`` bytes (so a short file is refused before its body is allocated)."""
    head = stream.read(4)
    head += stream.read(4 * (magic & 0xFF)) if len(head) == 4 else b""
    dims = _dims(head, source, magic, max_bytes)
    if len(head) + math.prod(dims) > at_most:
        raise _size_error(source, magic, dims, at_most, bound)
    body = bytearray(math.prod(dims))  # at most max_bytes: the header was checked first
    view, got = memoryview(body), 0
    while got < len(body):  # 1 MiB at a time: gzip's readinto would first build the whole body as bytes
        n = stream.readinto(view[got:got + _READ_BLOCK])
        if not n:
            raise _size_error(source, magic, dims, len(head) + got)
        got += n
    if stream.read(1):
        raise _size_error(source, magic, dims, None)
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def read_idx(path: Path, magic: int, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read one IDX file, gzipped (recognised by its magic bytes, whatever its name) or raw.

    The header is checked before the body is read: a declared size over ``max_bytes`` is refused at once,
    and a gzip stream is decompressed only as far as the declared size plus one byte, so a small file that
    expands to gigabytes costs neither the time nor the memory. Structural problems and broken gzip data
    are a ValueError naming the file; OSError only when the file cannot be opened or read.
    """
    path = Path(path)
    f = open_regular(path)
    if f is None:
        raise ValueError(f"{path}: {NOT_REGULAR}, expected an IDX file")
    with f:
        gzipped = f.read(2) == b"\x1f\x8b"
        f.seek(0)
        size = os.fstat(f.fileno()).st_size
        if not gzipped:
            return _read_body(f, path, magic, max_bytes, size, "")
        try:
            with gzip.GzipFile(fileobj=f, mode="rb") as stream:
                return _read_body(stream, path, magic, max_bytes, _DEFLATE_MAX_RATIO * size, "at most ")
        except (OSError, EOFError, zlib.error) as e:  # everything gzip raises on damaged data
            raise ValueError(f"{path}: broken gzip file ({e})") from None


def read_split(name: str, images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 1, 28, 28), labels int64 (N,)) from one pair of files, cross-checked."""
    images = read_idx(images_path, IMAGE_MAGIC)
    labels = read_idx(labels_path, LABEL_MAGIC)
    if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise ValueError(f"{images_path}: images are {images.shape[1:]}, expected {IMAGE_SIDE}x{IMAGE_SIDE}")
    if len(images) != len(labels):
        raise ValueError(f"{labels_path}: {len(labels)} labels but {images_path.name} holds {len(images)} images")
    n_classes = len(CLASS_NAMES[name])
    if labels.size and labels.max() >= n_classes:
        raise ValueError(f"{labels_path}: label {labels.max()} out of range, {name} has {n_classes} classes")
    return images[:, None], labels.astype(np.int64)


def _download_verified(url: str, dest: Path, md5: str) -> Path:
    """Stream ``url`` to a temp file beside ``dest``; rename it onto ``dest`` only if its MD5 matches."""
    digest = hashlib.md5()
    with atomic_path(dest) as tmp:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(tmp, "wb") as f:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                f.write(chunk)
        if digest.hexdigest() != md5:
            raise ValueError(
                f"{dest.name}: checksum mismatch for {url}: expected MD5 {md5}, got {digest.hexdigest()} "
                "(the download was deleted; try again or fetch the file by hand)"
            )
    return dest


def _offline_message(name: str, data_dir: str | os.PathLike | None, failures: list[str]) -> str:
    files = ", ".join(f"{s}.gz" for s in ALL_FILES)
    dirs = ", ".join(str(d) for d in search_dirs(name, data_dir))
    tried = "; ".join(failures) or "no mirrors configured"
    return (
        f"{name}: files not found and the download failed. Put {files} (gzipped or not) in one of: {dirs} "
        f"(or set $LATENTSPACE_DATA to a folder holding {name}/, or pass --data-dir). Tried: {tried}"
    )


def download(name: str, stems: Sequence[str], mirrors: Sequence[str], data_dir=None) -> None:
    """Fetch ``stems`` (.gz) into ``cache_root()/name``, trying ``mirrors`` in order for each file."""
    dest_dir = cache_root() / name
    for stem in stems:
        md5 = MD5[name][ALL_FILES.index(stem)]
        failures = []
        for base in mirrors:
            url = base.rstrip("/") + f"/{stem}.gz"
            logger.info("downloading %s", url)
            try:
                _download_verified(url, dest_dir / f"{stem}.gz", md5)
                break
            except (OSError, HTTPException) as e:  # an unreachable mirror: try the next one
                failures.append(f"{url} ({getattr(e, 'reason', None) or e})")
        else:
            raise FileNotFoundError(_offline_message(name, data_dir, failures))


def load_idx(
    name: str,
    split: str | None = None,
    data_dir: str | os.PathLike | None = None,
    size: int | None = None,
    channels: int | None = None,
    mirrors: Sequence[str] | None = None,
) -> ImageSet:
    """Load an IDX dataset: images uint8 (N, C, size, size), labels int64 (N,) with its class names.

    split None gives train then test concatenated. Default size 28 and 1 channel (the files as they are);
    ``size`` resizes (bilinear, antialiased), ``channels=3`` repeats grey to RGB.
    mirrors: base URLs to download from (default ``MIRRORS[name]``).
    """
    if name not in CLASS_NAMES:
        raise ValueError(f"unknown IDX dataset {name!r}, expected one of {', '.join(CLASS_NAMES)}")
    if split not in (None, "train", "test"):
        raise ValueError(f"split must be None, 'train' or 'test', got {split!r}")
    if channels is not None:
        check_channels(channels)
    splits = ("train", "test") if split is None else (split,)
    stems = [s for sp in splits for s in SPLIT_FILES[sp]]
    missing = [s for s in stems if find_file(s, search_dirs(name, data_dir)) is None]
    if missing:
        download(name, missing, MIRRORS.get(name, ()) if mirrors is None else mirrors, data_dir)
    parts = [read_split(name, *(find_file(s, search_dirs(name, data_dir)) for s in SPLIT_FILES[sp])) for sp in splits]
    images = parts[0][0] if len(parts) == 1 else np.concatenate([p[0] for p in parts])
    labels = parts[0][1] if len(parts) == 1 else np.concatenate([p[1] for p in parts])
    if size is not None:
        images = resize_images(images, size)
    if channels is not None:
        images = convert_channels(images, channels)
    return ImageSet(images=images, name=name, labels=labels, class_names=CLASS_NAMES[name], split=split)
