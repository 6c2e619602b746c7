"""Datasets: real (IDX files, image folders) and generated (shapes, faces), all as one ImageSet type."""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from latentspace.data.imageset import ImageSet
from latentspace.data.transforms import to_float, to_uint8
from latentspace.utils.progress import NULL_PROGRESS, Progress

IDX_DATASETS = ("mnist", "fashion-mnist", "kmnist")
GENERATED_DATASETS = ("faces", "shapes")
SPLITS = (None, "train", "test")


def available() -> tuple[str, ...]:
    """Names `load` accepts besides folder paths."""
    return IDX_DATASETS + GENERATED_DATASETS


def load(
    name_or_folder: str | Path,
    split: str | None = None,
    data_dir: str | Path | None = None,
    size: int | None = None,
    channels: int | None = None,
    seed: int = 0,
    n: int | None = None,
    progress: Progress = NULL_PROGRESS,
) -> ImageSet:
    """Load a dataset by name or an image folder by path.

    split: None (all images), "train" or "test". size/channels: resize and convert (folders and
    generated data; IDX data is 28x28 grey unless asked otherwise). seed: generated data and the
    seeded 90/10 split of folders without train/ and test/. n: at most this many images (the first n).
    progress: reports decoding when a folder is loaded for the first time.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be None, 'train' or 'test', got {split!r}")
    if n is not None and n <= 0:
        raise ValueError(f"n must be a positive number of images, got {n}")
    key = str(name_or_folder)
    lowered = key.lower()
    if lowered in IDX_DATASETS:
        from latentspace.data.idx import load_idx

        out = load_idx(lowered, split=split, data_dir=data_dir, size=size, channels=channels)
    elif lowered in GENERATED_DATASETS:
        out = _copy(_generated(lowered, split, size or 64, channels, seed, n))
    elif Path(key).expanduser().is_dir():
        from latentspace.data.folder import load_folder

        out = load_folder(
            Path(key).expanduser(), split=split, size=size, channels=channels, seed=seed, progress=progress
        )
    else:
        raise ValueError(
            f"unknown dataset {key!r}: expected one of {', '.join(available())} or an existing image folder"
        )
    return out if n is None or len(out) <= n else out.subset(slice(0, n))


@lru_cache(maxsize=3)
def _generated(name: str, split: str | None, size: int, channels: int | None, seed: int, n: int | None) -> ImageSet:
    """Generated data is a pure function of its arguments, and one report or demo asks for the same split
    a few dozen times (26 renders of the faces took 15 of a pretrained demo's 41 s), so a process draws it once."""
    if name == "faces":
        from latentspace.data.faces import load_faces

        return load_faces(split=split, size=size, channels=channels or 3, seed=seed, n=n)
    from latentspace.data.shapes import load_shapes

    return load_shapes(split=split, size=size, channels=channels or 1, seed=seed, n=n)


def _copy(images: ImageSet) -> ImageSet:
    """A caller's own arrays, so no caller can change what the next one is given."""
    factors = None if images.factors is None else images.factors.copy()
    labels = None if images.labels is None else images.labels.copy()
    return replace(images, images=images.images.copy(), factors=factors, labels=labels)


__all__ = ["ImageSet", "load", "available", "to_float", "to_uint8", "IDX_DATASETS", "GENERATED_DATASETS"]
