"""Single points of a run's latent space: where a code lies on the 2-D map of the test codes and which code
lies under a map position, which real training images are nearest to a code, and an uploaded image read from
bytes into pixels the model takes.

The map (``LatentMap``) goes both ways:

- 'pca': the plane of the test codes' first two principal components through their mean. A map position
  (x, y) is the code mean + x c_1 + y c_2, and a code maps to its projection on that plane.
- 'latent': a 2-D latent is its own map (a 1-D one is drawn on the x axis).
- 'tsne', 'umap': neither direction has a formula. Both go through the mapped test codes by modified
  Shepard interpolation over the 8 nearest (latent.manifold.shepard_map): a map position becomes the
  weighted mean of the codes of the nearest map points, a new code the weighted mean of the map positions
  of the nearest codes. Exact at every mapped code, continuous everywhere, never outside the data's range.
  The embedding is slow (tens of seconds), so it is cached beside the run in ``map_<method>.safetensors``,
  keyed by the weights file like the codes.

Uploads are read from bytes, never from a path the caller names: at most MAX_UPLOAD_BYTES, judged by
decoding (PNG, JPEG or WebP, whatever the file was called), and the pixel count is read from the header
and checked against MAX_UPLOAD_PIXELS before a single pixel is decoded.
"""
from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from latentspace.api.common import Device, cached_codes, model_key, open_model, read_keyed
from latentspace.api.maps import MAX_EMBED_POINTS
from latentspace.data import ImageSet
from latentspace.data.decode import MAX_PIXELS, decode_image
from latentspace.data.resize import convert_channels
from latentspace.latent.directions import AttributeDirection
from latentspace.latent.manifold import PROJECTIONS, project_2d, shepard_map
from latentspace.metrics.evaluator import (
    CACHE_DIR,
    CONFIG,
    WEIGHTS,
    Evaluator,
    EvaluatorConfig,
    cache_key,
    dataset_heads,
    load_evaluator,
)
from latentspace.train.run import Run
from latentspace.train.zoo import resolve_run
from latentspace.utils.files import read_json, save_safetensors
from latentspace.utils.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)

MAP_FORMAT = "latentspace.map/1"
MAP_METHODS = ("pca", *(m for m in PROJECTIONS if m != "pca"))
SHEPARD_K = 8
NEIGHBOURS = 8
MAX_UPLOAD_BYTES = 10_000_000  # 10 MB
MAX_UPLOAD_PIXELS = MAX_PIXELS  # width x height, from the header: a 40-megapixel photo is the largest read
UPLOAD_FORMATS = ("PNG", "JPEG", "WEBP")
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


class ImageTooLarge(ValueError):
    """An upload over MAX_UPLOAD_BYTES, or an image over MAX_UPLOAD_PIXELS."""


class NotAnImage(ValueError):
    """Bytes that do not decode as a PNG, JPEG or WebP image."""


# -- the map -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatentMap:
    """A 2-D map of test codes and the way between map positions and codes (see the module docstring).

    method: 'pca', 'latent', 'tsne' or 'umap'. index: (N,) int64 test indices of the mapped codes; xy: (N, 2)
    float32 their positions; z: (N, D) float32 their codes. mean (D,) and components (2, D) define the
    linear maps ('pca', 'latent'); None for the others.
    """

    method: str
    index: np.ndarray
    xy: np.ndarray
    z: np.ndarray
    mean: np.ndarray | None = None
    components: np.ndarray | None = None

    @property
    def is_linear(self) -> bool:
        return self.components is not None

    def to_latent(self, xy: np.ndarray) -> np.ndarray:
        """Map positions (Q, 2) -> codes (Q, D) float32."""
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        if self.is_linear:
            return (self.mean + xy @ self.components).astype(np.float32)
        return shepard_map(self.xy, self.z, xy, SHEPARD_K)

    def to_map(self, z: np.ndarray) -> np.ndarray:
        """Codes (Q, D) -> map positions (Q, 2) float32."""
        z = np.asarray(z, np.float64).reshape(-1, self.z.shape[1])
        if self.is_linear:
            return ((z - self.mean) @ self.components.T).astype(np.float32)
        return shepard_map(self.z, self.xy, z, SHEPARD_K)


def linear_map(z: np.ndarray) -> LatentMap:
    """The PCA plane through the mean of codes (N, D), D >= 3; a 1-D or 2-D latent is its own map."""
    z = np.asarray(z, np.float32)
    if z.ndim != 2 or len(z) < 3:
        raise ValueError(f"a map needs codes (N >= 3, D), got {z.shape}")
    d = z.shape[1]
    if d <= 2:
        mean, components = np.zeros(d), np.eye(2, d)
        return LatentMap("latent", np.arange(len(z)), (z @ components.T).astype(np.float32), z, mean, components)
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, svd_solver="full").fit(z)
    mean, components = pca.mean_.astype(np.float64), pca.components_.astype(np.float64)
    xy = ((z - mean) @ components.T).astype(np.float32)
    return LatentMap("pca", np.arange(len(z)), xy, z, mean, components)


def embed_map(z: np.ndarray, method: str, seed: int = 0, max_points: int = MAX_EMBED_POINTS) -> LatentMap:
    """A t-SNE or UMAP map of a seeded subsample of at most ``max_points`` codes (N, D) (their cost grows fast)."""
    if method not in ("tsne", "umap"):
        raise ValueError(f"embed_map method must be 'tsne' or 'umap', got {method!r}")
    z = np.asarray(z, np.float32)
    index = _subsample(len(z), max_points, seed)
    return LatentMap(method, index, project_2d(z[index], method, seed), z[index])


def _subsample(n: int, max_points: int, seed: int) -> np.ndarray:
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def map_path(run_dir: str | Path, method: str) -> Path:
    return resolve_run(run_dir) / f"map_{method}.safetensors"


def _map_key(run: Run, method: str, n_codes: int, seed: int) -> dict[str, str]:
    return {"format": MAP_FORMAT, "method": method, "n_codes": str(n_codes), "seed": str(seed),
            "max_points": str(MAX_EMBED_POINTS), **model_key(run)}


def cached_map(run: Run, z_test: np.ndarray, method: str = "pca", seed: int = 0, compute: bool = True) -> LatentMap | None:
    """The map of the test codes (N, D) by ``method``. t-SNE and UMAP maps are read from
    ``map_<method>.safetensors`` when current, else computed (slow) and cached, or None when ``compute`` is
    False. A 1-D or 2-D latent has one map, 'latent', whatever the method."""
    if method not in MAP_METHODS:
        raise ValueError(f"map method must be one of {', '.join(MAP_METHODS)}, got {method!r}")
    if method == "pca" or z_test.shape[1] <= 2:
        return linear_map(z_test)
    path, key = map_path(run.path, method), _map_key(run, method, len(z_test), seed)
    cached = read_keyed(path, key, ("index", "xy"), "map cache")
    if cached is not None:
        index, xy = cached
        return LatentMap(method, index, xy, np.asarray(z_test[index], np.float32))
    if not compute:
        return None
    log.info("computing the %s map of %d test codes (cached in %s)", method, min(len(z_test), MAX_EMBED_POINTS), path)
    result = embed_map(z_test, method, seed)
    save_safetensors(path, {"index": result.index.astype(np.int64), "xy": result.xy}, key, framework="numpy")
    return result


def code_map(
    run_dir: str | Path, method: str = "pca", seed: int = 0, device: Device = "cpu",
    progress: Progress = NULL_PROGRESS,
) -> LatentMap:
    """The run's 2-D map of its encoded test split, with the way back from positions to codes."""
    run, model = open_model(run_dir, device)
    _, z = cached_codes(run, model, "test", progress)
    return cached_map(run, z, method, seed)


# -- neighbours ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Neighbours:
    """The k training codes nearest to each of Q codes: ``index`` (Q, k) int64 into the train split, nearest
    first (ties by index); ``distance`` (Q, k) float32, Euclidean distance between codes."""

    index: np.ndarray
    distance: np.ndarray


def nearest_train(z: np.ndarray, z_train: np.ndarray, k: int = NEIGHBOURS) -> Neighbours:
    """The real training images nearest to codes ``z`` (Q, D) or (D,), by the distance of their codes
    ``z_train`` (M, D) (posterior means): the one answer to "which real images lie near this point"."""
    z = np.asarray(z, np.float32).reshape(-1, z_train.shape[1])
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(k, len(z_train))
    train = np.asarray(z_train, np.float32)
    d2 = (train**2).sum(1)[None, :] - 2.0 * (z @ train.T)  # |z|^2 is the same for every candidate
    candidates = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < len(train) else np.tile(np.arange(k), (len(z), 1))
    exact = np.sqrt(((z[:, None, :].astype(np.float64) - train[candidates]) ** 2).sum(-1))
    order = np.lexsort((candidates, exact), axis=1)
    return Neighbours(np.take_along_axis(candidates, order, 1).astype(np.int64),
                      np.take_along_axis(exact, order, 1).astype(np.float32))


# -- edits ---------------------------------------------------------------------------------------------------


def moved_code(
    z: np.ndarray, directions: Sequence[AttributeDirection], strengths: Mapping[str, float],
    axes: np.ndarray | None = None,
) -> np.ndarray:
    """Code z (D,) moved along attribute directions and latent axes: z + sum_a s_a scale_a v_a + axes.

    strengths: attribute name -> strength in stds of the training projections (as api.edit); every name must
    be among ``directions``. axes: (D,) offsets added to each latent axis (prior stds), or None."""
    out = np.asarray(z, np.float64).copy()
    by_name = {d.name: d for d in directions}
    for name, s in strengths.items():
        if name not in by_name:
            raise ValueError(f"no attribute direction {name!r}; directions: {', '.join(by_name) or 'none'}")
        out += float(s) * by_name[name].scale * by_name[name].vector
    if axes is not None:
        out += np.asarray(axes, np.float64).reshape(out.shape)
    return out.astype(np.float32)


# -- uploads -------------------------------------------------------------------------------------------------


def read_image_bytes(
    data: bytes, image_shape: tuple[int, int, int], max_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_UPLOAD_PIXELS,
) -> np.ndarray:
    """The bytes of a PNG, JPEG or WebP file -> uint8 (C, H, W) of ``image_shape``, scaled and cropped as
    ``api.read_image`` does. ImageTooLarge over ``max_bytes`` or ``max_pixels`` (read from the header,
    before decoding); NotAnImage when the bytes are not one of those formats or do not decode."""
    if len(data) > max_bytes:
        raise ImageTooLarge(f"the upload is {len(data) / 1e6:.1f} MB, the limit is {max_bytes / 1e6:g} MB")
    if not data:
        raise NotAnImage("the upload is empty")
    try:
        with Image.open(io.BytesIO(data), formats=UPLOAD_FORMATS) as img:
            width, height, fmt = img.width, img.height, img.format
    except UnidentifiedImageError:
        raise NotAnImage("the upload is not a PNG, JPEG or WebP image") from None
    except Image.DecompressionBombError as e:  # PIL's own guard, at twice its MAX_IMAGE_PIXELS, as it opens
        raise ImageTooLarge(f"{_first_line(e)}; the limit is {max_pixels / 1e6:g} megapixels") from None
    except _DECODE_ERRORS as e:
        raise NotAnImage(f"the upload is not a readable image ({_first_line(e)})") from None
    if width * height > max_pixels:
        raise ImageTooLarge(f"the image is {width}x{height} = {width * height / 1e6:.0f} megapixels, the limit is "
                            f"{max_pixels / 1e6:g}")
    try:
        rgb = decode_image(io.BytesIO(data), image_shape[1])
    except _DECODE_ERRORS as e:
        raise NotAnImage(f"cannot decode this {fmt} image ({_first_line(e)})") from None
    return convert_channels(rgb[None], image_shape[0])[0]


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:120] if text else type(e).__name__


# -- realness, cheaply ---------------------------------------------------------------------------------------


def cached_evaluator(run: Run, train: ImageSet) -> Evaluator | None:
    """The run's evaluator when ``<run>/evaluator/`` already holds one for this data (default config), else
    None: interactive callers score with what is cached and never wait for training."""
    heads = dataset_heads(train)
    folder = run.path / CACHE_DIR
    if not heads or not (folder / WEIGHTS).is_file() or not (folder / CONFIG).is_file():
        return None
    key = cache_key(train, EvaluatorConfig(image_shape=train.shape, heads=heads))
    if read_json(folder / CONFIG).get("key") != key:
        return None
    return load_evaluator(folder)
