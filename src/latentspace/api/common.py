"""Steps every run-level verb shares: open a run, read an image, encode a whole split once (cached).

Caches beside the run are keyed so that they are rebuilt when the model changes:

    codes_<split>.safetensors   posterior means of a whole split (``z`` (N, D) float32); key in the metadata
    evaluator/                  the evaluator classifier (metrics.evaluator_for_run)

An image argument is an ``int`` (index into the run's test split) or a path to an image file, which is read,
scaled and centre cropped to the model's image shape.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np
import torch

from latentspace.data import ImageSet
from latentspace.data.decode import ImageDecodeError, decode_image
from latentspace.data.resize import convert_channels
from latentspace.latent.codes import encode_images, model_device
from latentspace.metrics import evaluator as evaluator_module
from latentspace.metrics.evaluator import Evaluator, EvaluatorConfig
from latentspace.models import Autoencoder
from latentspace.train.run import MODEL, Run, open_run
from latentspace.train.zoo import evaluators_for, resolve_run
from latentspace.utils.device import channels_last
from latentspace.utils.files import CHECKSUM_KEY, read_json, read_safetensors, safetensors_metadata, save_safetensors
from latentspace.utils.files import write_json
from latentspace.utils.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)
T = TypeVar("T")

CODES_FORMAT = "latentspace.codes/1"

ImageRef = int | str | Path
Device = str | torch.device


def load(run_dir: str | Path, device: Device = "cpu") -> Autoencoder:
    """The trained model of a run folder, in eval mode on ``device`` (ValueError if it is not a run)."""
    return channels_last(open_run(run_dir).model(device))

def open_model(run_dir: str | Path, device: Device) -> tuple[Run, Autoencoder]:
    """The opened run and its model on ``device`` (ValueError if it is not a run)."""
    run = open_run(run_dir)
    return run, channels_last(run.model(device))


def read_image(path: str | Path, image_shape: tuple[int, int, int]) -> np.ndarray:
    """One image file -> uint8 (C, H, W) of ``image_shape``: shorter side scaled, centre cropped, channels converted."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"{path}: no such image file (expected a test-split index or an image file)")
    try:
        rgb = decode_image(path, image_shape[1])
    except ImageDecodeError as e:
        raise ValueError(f"{path}: cannot read this image ({e.reason})") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read this image ({e.strerror or e})") from None
    return convert_channels(rgb[None], image_shape[0])[0]


def image_ref(text: str) -> ImageRef:
    """An image named on a command line: digits that are not an existing file -> a test index, else a path."""
    text = str(text).strip()
    return int(text) if text.isdigit() and not Path(text).is_file() else Path(text)


def resolve_image(ref: ImageRef, run: Run, test: ImageSet | None) -> tuple[np.ndarray, str]:
    """The uint8 (C, H, W) image a reference names, and how to call it ('test[12]' or the path)."""
    if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
        test = test if test is not None else run.dataset("test")
        if not 0 <= ref < len(test):
            raise ValueError(f"image index {ref} is outside the test split of {test.name} (0..{len(test) - 1})")
        return test.images[ref], f"test[{ref}]"
    if isinstance(ref, (str, Path)):
        return read_image(ref, run.model_config.image_shape), str(ref)
    raise ValueError(f"an image must be a test-split index or an image file path, got {ref!r}")


def model_key(run: Run) -> dict[str, str]:
    """What a cache depends on: the weights' content, by the checksum stored in model.safetensors (files written
    before checksums: by modification time and size). Reads only the file's header."""
    path = run.path / MODEL
    digest = safetensors_metadata(path).get(CHECKSUM_KEY)
    if digest is not None:
        return {"model_sha256": digest}
    stat = path.stat()
    return {"model_mtime_ns": str(stat.st_mtime_ns), "model_size": str(stat.st_size)}


def codes_path(run_dir: str | Path, split: str) -> Path:
    """Where the codes cache of ``split`` lives beside the run."""
    return resolve_run(run_dir) / f"codes_{split}.safetensors"


def read_keyed(
    path: Path, key: dict[str, str], names: tuple[str, ...], what: str,
) -> tuple[np.ndarray, ...] | None:
    """The arrays ``names`` of the safetensors cache at ``path`` when its metadata is ``key``, else None (absent
    or stale); a damaged file is a ValueError naming it (``what``: e.g. 'codes cache')."""
    if not path.is_file():
        return None
    try:
        arrays, meta = read_safetensors(path, framework="numpy")
    except ValueError as e:
        raise ValueError(f"{e}; it is a {what}: delete it and it will be rebuilt") from None
    meta.pop(CHECKSUM_KEY, None)
    if meta != key or not all(n in arrays for n in names):
        return None
    return tuple(arrays[n] for n in names)


def keyed_json(path: Path, key: dict[str, Any], compute: Callable[[], T], encode: Callable[[T], Any],
               decode: Callable[[Any], T]) -> T:
    """``compute()``, stored at ``path`` as JSON under ``key`` (plain JSON values) and read back while the key
    holds; a stale or unreadable file is measured again and replaced."""
    if path.is_file():
        try:
            saved = read_json(path)
            if isinstance(saved, dict) and saved.get("key") == key:
                return decode(saved["value"])
        except (KeyError, TypeError, ValueError) as e:
            log.warning("%s: unreadable (%s); measuring again", path, e)
    value = compute()
    write_json(path, {"key": key, "value": encode(value)})
    return value


def cached_codes(run: Run, model: Autoencoder, split: str, progress: Progress) -> tuple[ImageSet, np.ndarray]:
    """The split's images and their posterior means (N, D) float32, encoded once per model and cached."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    images = run.dataset(split)
    key = {"format": CODES_FORMAT, "split": split, "n_images": str(len(images)),
           "latent_dim": str(model.config.latent_dim), **model_key(run)}
    path = codes_path(run.path, split)
    cached = read_keyed(path, key, ("z",), "codes cache")
    z = None if cached is None else cached[0]
    if z is None:
        log.info("encoding the %s split of %s (%d images) into %s", split, images.name, len(images), path)
        z = encode_images(model, images.images, progress=progress)
        save_safetensors(path, {"z": z}, key, framework="numpy")
    return images, z


def split_codes(
    run_dir: str | Path, split: str = "test", device: Device = "cpu", progress: Progress = NULL_PROGRESS,
) -> tuple[ImageSet, np.ndarray]:
    """A split of the run's data and its posterior means (N, D) float32, cached in ``codes_<split>.safetensors``."""
    run, model = open_model(run_dir, device)
    return cached_codes(run, model, split, progress)



def run_evaluator(
    run: Run, model: Autoencoder, train: ImageSet | None = None, test: ImageSet | None = None,
    progress: Progress = NULL_PROGRESS, config: EvaluatorConfig | None = None,
) -> Evaluator | None:
    """The run's evaluator classifier (trained on first use, cached in ``<run>/evaluator/``); None without
    labels or discrete factors."""
    train = train if train is not None else run.dataset("train")
    test = test if test is not None else run.dataset("test")
    return evaluator_module.evaluator_for_run(run.path, train, test, model_device(model), progress, config,
                                              shared=lambda: evaluators_for(run.data_info))


def colouring(images: ImageSet) -> tuple[np.ndarray | None, tuple[str, ...], str]:
    """What to colour codes by: the labels, else the first discrete factor, else nothing."""
    if images.labels is not None:
        names = images.class_names or tuple(str(i) for i in range(int(images.labels.max(initial=0)) + 1))
        return images.labels.astype(np.int64), tuple(names), "label"
    for name in images.factor_names:
        if images.is_discrete(name):
            return images.factor(name).astype(np.int64), images.factor_values[name], name
    return None, (), ""
