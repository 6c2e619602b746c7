"""What the explorer holds in memory, loaded once when the app starts; routes only do per-request work.

Startup reads the model (CPU, eval mode), both splits and their codes from the run's caches
(``codes_<split>.safetensors``, encoded once if absent), and the 2-D maps: PCA always (a fraction of a second),
t-SNE / UMAP when cached beside the run or asked for. Attribute directions and the evaluator are read on
first use: directions from ``directions.json`` (fitted and saved there when absent), the evaluator only when
``<run>/evaluator/`` already holds one.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentspace.api.calibration import Calibration, LocateOptions, stored_calibration
from latentspace.api.common import cached_codes, open_model
from latentspace.api.describing import fitted_readers
from latentspace.api.edits import run_directions
from latentspace.api.points import MAP_METHODS, LatentMap, cached_evaluator, cached_map
from latentspace.data import ImageSet
from latentspace.latent.codes import encode_images
from latentspace.data.vocabulary import Vocabulary
from latentspace.latent.directions import AttributeDirection
from latentspace.latent.readers import AttributeReader
from latentspace.metrics.evaluator import Evaluator
from latentspace.models import Autoencoder
from latentspace.train.run import Run
from latentspace.utils.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)

MAX_UPLOADS = 32  # uploads held in memory, newest last; older ones are forgotten


@dataclass(frozen=True)
class Colouring:
    """One way to colour the test codes: ``values`` (N,) float32 per test image; ``names`` the value names of a
    label or discrete factor (values are indices into them), empty for a continuous factor."""

    name: str
    values: np.ndarray
    names: tuple[str, ...]

    @property
    def kind(self) -> str:
        return "discrete" if self.names else "continuous"


def colourings(images: ImageSet) -> dict[str, Colouring]:
    """The label (when labelled), then every factor, in the data's order."""
    out = {}
    if images.labels is not None:
        names = images.class_names or tuple(str(i) for i in range(int(images.labels.max(initial=0)) + 1))
        out["label"] = Colouring("label", images.labels.astype(np.float32), tuple(names))
    for name in images.factor_names:
        out[name] = Colouring(name, images.factor(name).astype(np.float32), images.factor_values.get(name, ()))
    return out


@dataclass(frozen=True)
class Upload:
    """An uploaded image after scaling and cropping: ``pixels`` uint8 (C, H, W) and its code ``z`` (D,)."""

    pixels: np.ndarray
    z: np.ndarray


class Uploads:
    """The last MAX_UPLOADS uploads, addressed like the splits: split 'upload', index counting from 0."""

    def __init__(self, capacity: int = MAX_UPLOADS) -> None:
        self.capacity = capacity
        self._items: OrderedDict[int, Upload] = OrderedDict()
        self._next = 0
        self._lock = threading.Lock()

    def add(self, upload: Upload) -> int:
        with self._lock:
            index, self._next = self._next, self._next + 1
            self._items[index] = upload
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
            return index

    def get(self, index: int) -> Upload | None:
        with self._lock:
            return self._items.get(index)

    def describe_missing(self, index: int) -> str:
        if index >= self._next:
            return f"no upload {index}: {self._next} images have been uploaded so far"
        return f"upload {index} is no longer held (the explorer keeps the last {self.capacity})"


class Explorer:
    """The run, its model and data, loaded once. Every array here is read-only after startup."""

    def __init__(self, run: Run, model: Autoencoder, train: ImageSet, z_train: np.ndarray, test: ImageSet,
                 z_test: np.ndarray, maps: dict[str, LatentMap], default_map: str) -> None:
        self.run, self.model = run, model
        self.train, self.z_train, self.test, self.z_test = train, z_train, test, z_test
        self.maps, self.default_map = maps, default_map
        self.colourings = colourings(test)
        self.train_labels = colourings(train)
        self.uploads = Uploads()
        self._lock = threading.Lock()
        self._directions: list[AttributeDirection] | None = None
        self._evaluator: tuple[Evaluator | None] | None = None
        self._calibration: tuple[LocateOptions, Calibration] | None = None
        self._readers: list[AttributeReader] | None = None
        self.vocabulary = Vocabulary.of(train)
        self.draw_lock = threading.Lock()  # one draw at a time: the first fits the conditional prior (a minute)

    @property
    def name(self) -> str:
        return self.run.path.name

    @property
    def latent_dim(self) -> int:
        return int(self.model.config.latent_dim)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.model.config.image_shape)  # type: ignore[return-value]

    def split(self, name: str) -> ImageSet:
        return self.train if name == "train" else self.test

    def codes(self, name: str) -> np.ndarray:
        return self.z_train if name == "train" else self.z_test

    def directions(self) -> list[AttributeDirection]:
        """The run's attribute directions: directions.json, fitted and saved there on first use when absent."""
        with self._lock:
            if self._directions is None:
                self._directions = run_directions(self.run, self.model, "mean")
            return self._directions

    def evaluator(self) -> Evaluator | None:
        """The run's cached evaluator, or None when there is none (never trained here: it takes too long)."""
        with self._lock:
            if self._evaluator is None:
                self._evaluator = (cached_evaluator(self.run, self.train),)
            return self._evaluator[0]

    def calibration(self) -> tuple[LocateOptions, Calibration] | None:
        """The run's cached on-manifold calibration and its options, or None while there is none: scoring the
        whole test split takes a minute or more, so it is read, never computed, here; a `locate` or `evaluate`
        run while the explorer is open is picked up on the next request."""
        with self._lock:
            if self._calibration is None:
                self._calibration = stored_calibration(self.run, self.model)
            return self._calibration

    def readers(self) -> list[AttributeReader]:
        """The run's attribute readers: readers.json, fitted (seconds) and saved there on first use when absent."""
        with self._lock:
            if self._readers is None:
                self._readers = fitted_readers(self.run, self.model)
            return self._readers

    def encode(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (C, H, W) -> its posterior mean (D,)."""
        return encode_images(self.model, pixels[None])[0]


def load_explorer(run_dir: str | Path, map_method: str = "pca", seed: int = 0,
                  progress: Progress = NULL_PROGRESS) -> Explorer:
    """Open the run on the CPU and load what every request needs. ``map_method`` 'tsne' or 'umap' computes
    that map now when it is not cached (tens of seconds); cached ones are offered anyway."""
    if map_method not in MAP_METHODS:
        raise ValueError(f"map must be one of {', '.join(MAP_METHODS)}, got {map_method!r}")
    run, model = open_model(run_dir, "cpu")
    model.eval()
    train, z_train = cached_codes(run, model, "train", progress)
    test, z_test = cached_codes(run, model, "test", progress)
    maps: dict[str, LatentMap] = {}
    for method in MAP_METHODS:
        found = cached_map(run, z_test, method, seed, compute=method == map_method)
        if found is not None and found.method not in maps:
            maps[found.method] = found
    default = map_method if map_method in maps else next(iter(maps))
    log.info("explorer: %s, %d train and %d test codes, maps %s", run.path, len(z_train), len(z_test), list(maps))
    return Explorer(run, model, train, z_train, test, z_test, maps, default)
