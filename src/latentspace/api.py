"""Run-level verbs: one call from a run folder to the arrays and tables each latent operation gives.

Every function here takes a run folder (written by `latentspace train`), loads what it needs and returns
arrays or frozen dataclasses; the CLI only parses, calls these and writes files. Nothing is written
except caches beside the run, each keyed so that it is rebuilt when the model changes:

    codes_<split>.safetensors   posterior means of a whole split (``z`` (N, D) float32); key in the metadata
    gmm.json                    the fitted GMM sampler ({"key": ..., "sampler": GMMSampler.to_dict()})
    evaluator/                  the evaluator classifier (metrics.evaluator_for_run)

(``export`` writes the projector files to the folder it is given: writing them is what it is for.)

An image argument is an ``int`` (index into the run's test split) or a path to an image file, which is read,
scaled and centre cropped to the model's image shape.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file
from sklearn.decomposition import PCA

from latentspace.data import ImageSet
from latentspace.data.folder import decode_image
from latentspace.data.resize import convert_channels
from latentspace.latent.codes import decode_latents, encode_images, model_device
from latentspace.latent.directions import (
    METHODS, AttributeDirection, BinaryTarget, binary_targets, conditional_direction, edit_latents, fit_direction,
    load_directions,
)  # fmt: skip
from latentspace.latent.export import export_projector
from latentspace.latent.interpolate import InterpolationPaths, interpolation_paths
from latentspace.latent.manifold import PROJECTIONS, pca_plane_grid, plane_grid, prior_quantile_grid, project_2d
from latentspace.latent.samplers import GMMSampler
from latentspace.latent.traverse import DEFAULT_VALUES, traversal_grid
from latentspace.metrics.disentanglement import AxisFactorTable, axis_factor_table
from latentspace.metrics.evaluator import EvaluatorConfig, evaluator_for_run
from latentspace.metrics.realness import SCORES, RealnessScores, RealnessTable, pair_table, path_realness
from latentspace.models import Autoencoder
from latentspace.train.run import MODEL, Run, open_run
from latentspace.utils.files import read_json, write_atomic, write_json
from latentspace.utils.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)

CODES_FORMAT = "latentspace.codes/1"
GMM_FILE = "gmm.json"
DIRECTIONS_FILE = "directions.json"
MAX_EMBED_POINTS = 5000  # t-SNE / UMAP cost grows fast with N: a seeded subsample of the test split this large
MIDDLE = (0.25, 0.75)  # frames averaged in a path's mean scores, as in metrics.realness.pair_table

ImageRef = int | str | Path
Device = str | torch.device


def load(run_dir: str | Path, device: Device = "cpu") -> Autoencoder:
    """The trained model of a run folder, in eval mode on ``device`` (ValueError if it is not a run)."""
    return open_run(run_dir).model(device)


# -- shared steps: open a run, read an image, encode a whole split once --------------------------------


def _open(run_dir: str | Path, device: Device) -> tuple[Run, Autoencoder]:
    run = open_run(run_dir)
    return run, run.model(device)


def read_image(path: str | Path, image_shape: tuple[int, int, int]) -> np.ndarray:
    """One image file -> uint8 (C, H, W) of ``image_shape``: shorter side scaled, centre cropped, channels converted."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"{path}: no such image file (expected a test-split index or an image file)")
    try:
        rgb = decode_image(path, image_shape[1])
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f"{path}: cannot read this image ({e})") from None
    return convert_channels(rgb[None], image_shape[0])[0]


def image_ref(text: str) -> ImageRef:
    """An image named on a command line: digits that are not an existing file -> a test index, else a path."""
    text = str(text).strip()
    return int(text) if text.isdigit() and not Path(text).is_file() else Path(text)


def _image(ref: ImageRef, run: Run, test: ImageSet | None) -> tuple[np.ndarray, str]:
    """The uint8 (C, H, W) image a reference names, and how to call it ('test[12]' or the path)."""
    if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
        test = test if test is not None else run.dataset("test")
        if not 0 <= ref < len(test):
            raise ValueError(f"image index {ref} is outside the test split of {test.name} (0..{len(test) - 1})")
        return test.images[ref], f"test[{ref}]"
    if isinstance(ref, (str, Path)):
        return read_image(ref, run.model_config.image_shape), str(ref)
    raise ValueError(f"an image must be a test-split index or an image file path, got {ref!r}")


def _model_key(run: Run) -> dict[str, str]:
    """What a cache depends on: the weights file, by modification time and size (safetensors metadata is str)."""
    stat = (run.path / MODEL).stat()
    return {"model_mtime_ns": str(stat.st_mtime_ns), "model_size": str(stat.st_size)}


def codes_path(run_dir: str | Path, split: str) -> Path:
    return Path(run_dir) / f"codes_{split}.safetensors"


def _read_cached_codes(path: Path, key: dict[str, str]) -> np.ndarray | None:
    """The cached ``z`` when ``path`` holds codes under ``key``, else None."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="numpy") as f:
            if f.metadata() != key:
                return None
            return f.get_tensor("z")
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{path}: damaged codes cache ({e}); delete it and it will be rebuilt") from None


def _split_codes(run: Run, model: Autoencoder, split: str, progress: Progress) -> tuple[ImageSet, np.ndarray]:
    """The split's images and their posterior means (N, D) float32, encoded once per model and cached."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    images = run.dataset(split)
    key = {"format": CODES_FORMAT, "split": split, "n_images": str(len(images)),
           "latent_dim": str(model.config.latent_dim), **_model_key(run)}
    path = codes_path(run.path, split)
    z = _read_cached_codes(path, key)
    if z is None:
        log.info("encoding the %s split of %s (%d images) into %s", split, images.name, len(images), path)
        z = encode_images(model, images.images, progress=progress)
        write_atomic(path, lambda tmp: save_file({"z": z}, str(tmp), metadata=key))
    return images, z


def split_codes(
    run_dir: str | Path, split: str = "test", device: Device = "cpu", progress: Progress = NULL_PROGRESS,
) -> tuple[ImageSet, np.ndarray]:
    """A split of the run's data and its posterior means (N, D) float32, cached in ``codes_<split>.safetensors``."""
    run, model = _open(run_dir, device)
    return _split_codes(run, model, split, progress)


# -- interpolate ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InterpolationResult:
    """Pixel / lerp / slerp paths between two images; ``scores[path]`` per frame (None when not scored).

    sources: how the two ends were named ('test[12]' or a file path)."""

    paths: InterpolationPaths
    scores: dict[str, RealnessScores] | None
    sources: tuple[str, str]

    def mean_scores(self, middle: tuple[float, float] = MIDDLE) -> dict[str, dict[str, float]]:
        """path -> score -> mean over the frames with t in ``middle`` (NaN where a score was not computed)."""
        if self.scores is None:
            raise ValueError("this interpolation was not scored (score=False)")
        keep = (self.paths.t >= middle[0] - 1e-6) & (self.paths.t <= middle[1] + 1e-6)
        if not keep.any():
            keep[:] = True  # too few steps for a middle: average every frame
        out = {}
        for path, s in self.scores.items():
            values = {k: getattr(s, k) for k in SCORES}
            out[path] = {k: math.nan if v is None else float(np.mean(v[keep])) for k, v in values.items()}
        return out


def interpolate(
    run_dir: str | Path, a: ImageRef, b: ImageRef, steps: int = 10, device: Device = "cpu", score: bool = True,
    seed: int = 0, evaluator_config: EvaluatorConfig | None = None, progress: Progress = NULL_PROGRESS,
) -> InterpolationResult:
    """Paths from image ``a`` to image ``b`` (``steps`` frames, both ends included).

    score: rate every frame by the three realness scores (metrics.realness), training the run's evaluator on
    first use (cached in ``<run>/evaluator/``; ``evaluator_config`` says how, default: the evaluator's
    defaults). seed: the posterior-sample noise of the ELBO score.
    """
    run, model = _open(run_dir, device)
    test = run.dataset("test") if any(isinstance(r, (int, np.integer)) for r in (a, b)) or score else None
    (image_a, name_a), (image_b, name_b) = _image(a, run, test), _image(b, run, test)
    paths = interpolation_paths(model, image_a, image_b, steps)
    scores = None
    if score:
        train = run.dataset("train")
        evaluator = evaluator_for_run(run.path, train, test, model_device(model), progress, evaluator_config)
        generator = torch.Generator(model_device(model)).manual_seed(seed)
        scores = path_realness(paths, model, evaluator, train.images, generator)
    return InterpolationResult(paths, scores, (name_a, name_b))


def interpolation_table(
    run_dir: str | Path, n_pairs: int = 100, steps: int = 10, seed: int = 0, device: Device = "cpu",
    evaluator_config: EvaluatorConfig | None = None, progress: Progress = NULL_PROGRESS,
) -> RealnessTable:
    """Realness of pixel / lerp / slerp paths over ``n_pairs`` seeded random test pairs (metrics.pair_table)."""
    run, model = _open(run_dir, device)
    train, test = run.dataset("train"), run.dataset("test")
    evaluator = evaluator_for_run(run.path, train, test, model_device(model), progress, evaluator_config)
    return pair_table(model, test, train.images, evaluator, n_pairs=n_pairs, steps=steps, seed=seed,
                      progress=progress)


# -- manifold -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManifoldGrid:
    """A decoded k x k grid of latent points: ``images`` uint8 (k*k, C, H, W) row-major, ``latents`` (k*k, D).

    name: file-friendly ('grid', 'plane', 'pca_plane'); title: what the grid spans."""

    name: str
    title: str
    images: np.ndarray
    latents: np.ndarray


@dataclass(frozen=True)
class ManifoldResult:
    """Pictures of the learned manifold and a 2-D map of the encoded test split.

    grids: for a 2-D latent one grid over the prior's quantiles; otherwise the plane through the three
    ``anchors`` (test indices) and the plane of the codes' first two principal components.
    xy: (N, 2) float32 map of the test codes at ``index`` (N,) by ``method`` ('latent' when the codes are
    already 2-D); labels (N,) int64 or None name ``class_names``; ``label_name`` says what they are
    ('label', or a discrete factor for unlabelled data).
    """

    latent_dim: int
    k: int
    grids: tuple[ManifoldGrid, ...]
    xy: np.ndarray
    index: np.ndarray
    method: str
    labels: np.ndarray | None
    class_names: tuple[str, ...]
    label_name: str
    anchors: tuple[int, ...]


def _colouring(images: ImageSet) -> tuple[np.ndarray | None, tuple[str, ...], str]:
    """What to colour codes by: the labels, else the first discrete factor, else nothing."""
    if images.labels is not None:
        names = images.class_names or tuple(str(i) for i in range(int(images.labels.max(initial=0)) + 1))
        return images.labels.astype(np.int64), tuple(names), "label"
    for name in images.factor_names:
        if images.is_discrete(name):
            return images.factor(name).astype(np.int64), images.factor_values[name], name
    return None, (), ""


def default_anchors(images: ImageSet) -> tuple[int, int, int]:
    """The first three test images of different labels when labelled (and there are 3 classes), else 0, 1, 2."""
    if len(images) < 3:
        raise ValueError(f"the plane through three images needs 3 test images, {images.name} has {len(images)}")
    if images.labels is not None:
        _, first = np.unique(images.labels, return_index=True)
        if len(first) >= 3:
            a, b, c = (int(i) for i in np.sort(first)[:3])
            return a, b, c
    return 0, 1, 2


def manifold(
    run_dir: str | Path, method: str = "pca", k: int = 20, anchors: Sequence[int] | None = None,
    device: Device = "cpu", seed: int = 0, progress: Progress = NULL_PROGRESS,
) -> ManifoldResult:
    """The decoded latent manifold (k x k grids) and a 2-D map of the encoded test split.

    method: 'pca', 'tsne' or 'umap' for codes of more than 2 values; t-SNE and UMAP see a seeded subsample
    of at most MAX_EMBED_POINTS codes (their cost grows quickly with N), PCA sees every code.
    """
    if method not in PROJECTIONS:
        raise ValueError(f"method must be one of {', '.join(PROJECTIONS)}, got {method!r}")
    run, model = _open(run_dir, device)
    d = int(model.config.latent_dim)
    if d < 2:
        raise ValueError(f"manifold needs a latent of at least 2 values, the run's model has {d}")
    test, z = _split_codes(run, model, "test", progress)
    labels, class_names, label_name = _colouring(test)
    if d == 2:
        points = prior_quantile_grid(k)
        grids = (ManifoldGrid("grid", "decoded prior quantiles 5%..95%", decode_latents(model, points), points),)
        index, xy, used, chosen = np.arange(len(z)), z.astype(np.float32), "latent", ()
    else:
        chosen = tuple(int(i) for i in anchors) if anchors is not None else default_anchors(test)
        if len(chosen) != 3 or min(chosen) < 0 or max(chosen) >= len(z):
            raise ValueError(f"anchors must be 3 test indices in 0..{len(z) - 1}, got {list(chosen)}")
        plane = plane_grid(*z[list(chosen)], k=k)
        pca = pca_plane_grid(z, k=k)
        grids = (ManifoldGrid("plane", f"plane through test {', '.join(map(str, chosen))}",
                              decode_latents(model, plane), plane),
                 ManifoldGrid("pca_plane", "plane of the first two principal components",
                              decode_latents(model, pca), pca))
        index = _embed_index(len(z), method, seed)
        xy, used = project_2d(z[index], method, seed), method
    return ManifoldResult(d, k, grids, xy, index, used, None if labels is None else labels[index], class_names,
                          label_name, chosen)


def _embed_index(n: int, method: str, seed: int) -> np.ndarray:
    """Which codes a projection sees: all for PCA, a seeded sorted subsample of MAX_EMBED_POINTS otherwise."""
    if method == "pca" or n <= MAX_EMBED_POINTS:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=MAX_EMBED_POINTS, replace=False))


# -- evolution ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvolutionResult:
    """The probe codes after every epoch, projected to 2-D the same way for every epoch.

    epochs: (E,) completed epochs (0 = initial weights). xy: (E, P, 2) float32. projection: 'latent' (the
    codes are at most 2-D) or 'pca' (fitted on the last epoch and applied to all, so frames are comparable).
    labels: (P,) int64 or None naming ``class_names``. test_elbo: (E,) nats, NaN for epoch 0 (not evaluated).
    """

    epochs: tuple[int, ...]
    xy: np.ndarray
    projection: str
    labels: np.ndarray | None
    class_names: tuple[str, ...]
    test_elbo: np.ndarray
    metrics: tuple[dict, ...]


def evolution(run_dir: str | Path) -> EvolutionResult:
    """How the probe codes (snapshots.safetensors) moved during training, epoch by epoch."""
    run = open_run(run_dir)
    snapshots = run.snapshots()
    keys = sorted(k for k in snapshots if k.startswith("epoch_"))
    if not keys:
        raise ValueError(f"{run.path}: holds no probe snapshots (trained with probe_size 0?); nothing to animate")
    codes = np.stack([snapshots[k] for k in keys]).astype(np.float32)  # (E, P, D)
    if codes.shape[2] <= 2:
        xy, projection = np.pad(codes, ((0, 0), (0, 0), (0, 2 - codes.shape[2]))), "latent"
    else:
        pca = PCA(n_components=2, svd_solver="full").fit(codes[-1])
        xy, projection = pca.transform(codes.reshape(-1, codes.shape[2])).reshape(*codes.shape[:2], 2), "pca"
    labels = snapshots.get("probe_labels")
    class_names = run.dataset("test").class_names if labels is not None else ()
    if labels is not None and len(class_names) <= int(labels.max(initial=0)):
        class_names = tuple(str(i) for i in range(int(labels.max(initial=0)) + 1))
    metrics = run.metrics()
    elbo_by_epoch = {int(r["epoch"]): float(r["test_elbo"]) for r in metrics if "test_elbo" in r}
    epochs = tuple(int(k.removeprefix("epoch_")) for k in keys)
    test_elbo = np.array([elbo_by_epoch.get(e, math.nan) for e in epochs])
    return EvolutionResult(epochs, xy.astype(np.float32), projection, labels, tuple(class_names), test_elbo,
                           tuple(metrics))


# -- attributes and edits ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttributeFit:
    """A fitted direction and the accuracy a constant guess of the majority class gets on the same test codes."""

    direction: AttributeDirection
    majority_baseline: float
    n_train: int
    n_test: int

    @property
    def name(self) -> str:
        return self.direction.name


def _majority(y: np.ndarray) -> float:
    return float(max(y.mean(), 1.0 - y.mean())) if len(y) else math.nan


def _fit_attributes(
    run: Run, model: Autoencoder, method: str, condition_on: Sequence[str], names: Sequence[str] | None,
    progress: Progress,
) -> list[AttributeFit]:
    """Fit the binary targets of the run's data (only ``names`` and ``condition_on`` when names is given)."""
    train, z_train = _split_codes(run, model, "train", progress)
    test, z_test = _split_codes(run, model, "test", progress)
    targets = {t.name: t for t in binary_targets(train, test)}
    unknown = [n for n in [*(names or ()), *condition_on] if n not in targets]
    if unknown:
        raise ValueError(f"{train.name} has no attribute {unknown[0]!r}; attributes: {', '.join(targets) or 'none'}")
    wanted = list(targets) if names is None else [*names, *condition_on]
    fits: dict[str, AttributeFit] = {}
    for name in dict.fromkeys(wanted):
        t = targets[name]
        y = t.y_train[t.keep_train]
        if y.min() == y.max():
            log.info("no direction for %r: every kept training code has label %d", name, y[0])
            continue
        d = fit_direction(z_train[t.keep_train], y, z_test[t.keep_test], t.y_test[t.keep_test], method, name)
        fits[name] = AttributeFit(d, _majority(t.y_test[t.keep_test]), int(t.keep_train.sum()),
                                  int(t.keep_test.sum()))
    if condition_on:
        missing = [n for n in condition_on if n not in fits]
        if missing:
            raise ValueError(f"cannot condition on {missing[0]!r}: it has no direction (one class only)")
        others = [fits[n].direction for n in condition_on]
        for name, f in fits.items():
            if name not in condition_on:
                fits[name] = _conditioned(f, others, targets[name], z_train, z_test)
    keep = fits if names is None else {n: fits[n] for n in names if n in fits}
    return list(keep.values())


def _conditioned(fit: AttributeFit, others: list[AttributeDirection], t: BinaryTarget, z_train: np.ndarray,
                 z_test: np.ndarray) -> AttributeFit:
    d = conditional_direction(fit.direction, others, z_train[t.keep_train], t.y_train[t.keep_train],
                              z_test[t.keep_test], t.y_test[t.keep_test])
    return AttributeFit(d, fit.majority_baseline, fit.n_train, fit.n_test)


def attributes(
    run_dir: str | Path, method: str = "logistic", condition_on: Sequence[str] = (),
    names: Sequence[str] | None = None, device: Device = "cpu", progress: Progress = NULL_PROGRESS,
) -> list[AttributeFit]:
    """A direction per binary attribute of the run's data (latent.directions.binary_targets: one per class,
    per discrete factor value, per continuous factor's top vs bottom tercile), fitted on the encoded train
    split and probed on the encoded test split. condition_on: attribute names; every other direction gets
    InterFaceGAN's conditional form, orthogonal to theirs. names: only these attributes (default: all).
    Targets with one class only are skipped."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    run, model = _open(run_dir, device)
    return _fit_attributes(run, model, method, tuple(condition_on), None if names is None else tuple(names),
                           progress)


def _direction(run: Run, model: Autoencoder, attr: str, progress: Progress) -> AttributeDirection:
    """``attr`` from the run's directions.json when present, else fitted now (logistic) and not saved."""
    path = run.path / DIRECTIONS_FILE
    if path.is_file():
        saved = {d.name: d for d in load_directions(path)}
        if attr not in saved:
            raise ValueError(f"{path}: has no direction {attr!r}; it has {', '.join(saved) or 'none'}")
        d = saved[attr]
        if d.vector.shape != (model.config.latent_dim,):
            raise ValueError(f"{path}: direction {attr!r} has {d.vector.shape[0]} values, the model's latent "
                             f"{model.config.latent_dim}; refit with `latentspace attributes`")
        return d
    fits = _fit_attributes(run, model, "logistic", (), (attr,), progress)
    if not fits:
        raise ValueError(f"attribute {attr!r} has one class only in the training data: no direction to edit along")
    return fits[0].direction


def edit(
    run_dir: str | Path, image: ImageRef, attr: str, strengths: Sequence[float] = (-2, -1, 0, 1, 2),
    device: Device = "cpu", progress: Progress = NULL_PROGRESS,
) -> np.ndarray:
    """The image's posterior mean moved along attribute ``attr`` by each strength (in stds of the training
    projections) and decoded: uint8 (S, C, H, W). Strength 0 is the reconstruction."""
    if len(strengths) == 0:
        raise ValueError("strengths is empty: give at least one edit strength")
    run, model = _open(run_dir, device)
    pixels, _ = _image(image, run, None)
    direction = _direction(run, model, attr, progress)
    z = encode_images(model, pixels[None])[0]
    return decode_latents(model, edit_latents(z, direction, strengths))


# -- traverse ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TraverseResult:
    """grid: uint8 (D, V, C, H, W), row i sweeps axis i by ``values`` (V,) around ``z0`` (D,), the image's
    posterior mean. table: which axis holds which factor, from the encoded test split (the factors when the
    data has them, else the label; None for neither). source: the image ('test[0]' or a path)."""

    grid: np.ndarray
    values: np.ndarray
    z0: np.ndarray
    table: AxisFactorTable | None
    source: str


def axis_table(images: ImageSet, z: np.ndarray) -> AxisFactorTable | None:
    """Normalised MI of each latent axis with each non-constant factor (or with the label); None without either."""
    if images.factors is not None:
        varying = [j for j in range(images.factors.shape[1]) if np.ptp(images.factors[:, j]) > 0]
        names = [images.factor_names[j] for j in varying]
        return axis_factor_table(z, images.factors[:, varying], names, [images.is_discrete(n) for n in names])
    if images.labels is not None and len(np.unique(images.labels)) > 1:
        return axis_factor_table(z, images.labels[:, None], ["label"], [True])
    return None


def traverse(
    run_dir: str | Path, image: ImageRef = 0, values: Sequence[float] = DEFAULT_VALUES, device: Device = "cpu",
    progress: Progress = NULL_PROGRESS,
) -> TraverseResult:
    """Every latent axis swept by ``values`` (prior stds) around the image's posterior mean, decoded, with the
    table of which axis holds which factor."""
    run, model = _open(run_dir, device)
    test, z_test = _split_codes(run, model, "test", progress)
    pixels, source = _image(image, run, test)
    z0 = encode_images(model, pixels[None])[0]
    grid = traversal_grid(model, z0, values=values, relative=True)
    return TraverseResult(grid, np.asarray(values, np.float32), z0, axis_table(test, z_test), source)


# -- export -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    """What ``export`` wrote: ``log_dir`` (give it to tensorboard --logdir), n codes of latent_dim values,
    and the metadata columns."""

    log_dir: Path
    n: int
    latent_dim: int
    columns: tuple[str, ...]


def projector_metadata(images: ImageSet) -> dict[str, list[str]]:
    """Metadata columns for the projector: label (class name), every factor (value name or number), source name."""
    columns: dict[str, list[str]] = {}
    if images.labels is not None:
        labels, names, _ = _colouring(images)
        columns["label"] = [names[i] if i < len(names) else str(i) for i in labels]
    for name in images.factor_names:
        column = images.factor(name)
        if images.is_discrete(name):
            values = images.factor_values[name]
            columns[name] = [values[int(v)] for v in column]
        else:
            columns[name] = [f"{v:.4g}" for v in column]
    if images.names is not None:
        columns["name"] = list(images.names)
    return columns or {"index": [str(i) for i in range(len(images))]}


def export(
    run_dir: str | Path, out_dir: str | Path, split: str = "test", n: int | None = None, device: Device = "cpu",
    progress: Progress = NULL_PROGRESS,
) -> ExportResult:
    """Write the first ``n`` codes of a split (all by default) with thumbnails and metadata as TensorBoard
    projector files into ``out_dir`` (latent.export)."""
    if n is not None and n < 1:
        raise ValueError(f"n must be a positive number of codes, got {n}")
    run, model = _open(run_dir, device)
    images, z = _split_codes(run, model, split, progress)
    if n is not None and n < len(images):
        images, z = images.subset(slice(0, n)), z[:n]
    metadata = projector_metadata(images)
    export_projector(out_dir, z, images.images, metadata, name=f"{images.name} {split}")
    return ExportResult(Path(out_dir), len(z), int(z.shape[1]), tuple(metadata))


# -- samplers ---------------------------------------------------------------------------------------------


def gmm_sampler(
    run_dir: str | Path, components: int = 10, seed: int = 0, device: Device = "cpu",
    progress: Progress = NULL_PROGRESS,
) -> GMMSampler:
    """A Gaussian mixture of ``components`` fitted to the encoded train split; cached in ``<run>/gmm.json``
    and reused while the model, ``components`` and ``seed`` stay the same."""
    run, model = _open(run_dir, device)
    path = run.path / GMM_FILE
    key = {"components": components, "seed": seed, **_model_key(run)}
    if path.is_file():
        saved = read_json(path)
        if isinstance(saved, dict) and saved.get("key") == key and "sampler" in saved:
            log.info("reusing the GMM sampler in %s", path)
            return GMMSampler.from_dict(saved["sampler"])
    _, z = _split_codes(run, model, "train", progress)
    sampler = GMMSampler(components, seed=seed).fit(z)
    write_json(path, {"key": key, "sampler": sampler.to_dict()})
    return sampler
