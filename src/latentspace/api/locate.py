"""Is this image on the manifold? Where an image lands in a run's latent space, which real training images are
its neighbours, and whether the model counts it as one of its own (``locate``); and how well the scores tell
the run's test split from another data set (``ood``).

The scores are metrics.ood's, higher = more off the manifold: ``nll`` (IWAE bound), ``complexity`` (NLL minus
PNG length), ``code_density`` (-log p(z) under the run's GMM), ``recon`` (MSE) and ``combined`` (Fisher's
combination of the tail probabilities of the last three), the default: benchmarks/ood.py measured it against
each single score (README, "Is this image on the manifold?").

Calibration. The whole test split is scored once and cached in ``<run>/ood_calibration.safetensors`` (one
(N,) array per score plus the codes, keyed by the weights, k, seed and the GMM's settings); the GMM is the
run's sampler (``gmm.json``), the neighbours come from the cached train codes. Each score's threshold is its
``percentile``-th percentile (default 99) among the test images, so about 1% of real test images are called
off by it. The verdict is the default score's; the others are reported with their percentile and threshold.
The IW bound is random: its k samples come from a generator seeded with ``seed``, afresh for every located
image, so an image gets the same numbers whatever it is located with.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from latentspace.api.common import Device, cached_codes, colouring, model_key, open_model, read_image, read_keyed
from latentspace.api.points import NEIGHBOURS, LatentMap, cached_map, nearest_train
from latentspace.api.priors import fitted_gmm
from latentspace.data import ImageSet, available
from latentspace.data import load as load_data
from latentspace.latent.codes import decode_latents, model_device
from latentspace.metrics.ood import (
    ALL_SCORES, COMBINED, SCORES, ManifoldScores, combined_score, manifold_scores, percentile_of,
)  # fmt: skip
from latentspace.metrics.separation import Separation, separation
from latentspace.models import Autoencoder
from latentspace.train.run import Run
from latentspace.utils.files import save_safetensors
from latentspace.utils.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)

CALIBRATION_FILE = "ood_calibration.safetensors"
CALIBRATION_FORMAT = "latentspace.ood/1"
DEFAULT_SCORE = COMBINED
SPLITS = ("train", "test")

LocateRef = tuple[str, int] | str | Path  # ("test", 12), "test:12", or an image file


@dataclass(frozen=True)
class LocateOptions:
    """k: importance samples of the IW bound; seed: of those samples; percentile: each score's threshold among
    the test split's scores; neighbours: training images listed; components: of the GMM over the train codes;
    score: the one the verdict uses (one of metrics.ood.ALL_SCORES)."""

    k: int = 64
    seed: int = 0
    percentile: float = 99.0
    neighbours: int = NEIGHBOURS
    components: int = 10
    score: str = DEFAULT_SCORE
    batch_size: int = 100

    def __post_init__(self) -> None:
        for name in ("k", "neighbours", "components", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 50.0 <= self.percentile < 100.0:
            raise ValueError(f"percentile must be in [50, 100), got {self.percentile}")
        if self.score not in ALL_SCORES:
            raise ValueError(f"score must be one of {', '.join(ALL_SCORES)}, got {self.score!r}")


@dataclass(frozen=True)
class Calibration:
    """The test split's scores (``test``) and ``combined`` (N,) (each test image against the others), with the
    percentile that sets the thresholds."""

    test: ManifoldScores
    combined: np.ndarray
    percentile: float

    def values(self, name: str) -> np.ndarray:
        """The test split's (N,) values of score ``name``."""
        return self.combined if name == COMBINED else getattr(self.test, name)

    def threshold(self, name: str) -> float:
        return float(np.percentile(self.values(name), self.percentile))

    def score_values(self, scores: ManifoldScores) -> dict[str, np.ndarray]:
        """Every score (ALL_SCORES order) of other images, ``combined`` judged against the test split."""
        return {**{name: getattr(scores, name) for name in SCORES},
                COMBINED: combined_score(scores.table(), self.test.table())}


@dataclass(frozen=True)
class ScoreReading:
    """One score of one image: its value, its percentile among the test images, the threshold (that score's
    calibration percentile) and whether the value is above it."""

    name: str
    value: float
    percentile: float
    threshold: float
    off: bool


@dataclass(frozen=True)
class Location:
    """Where one image lands and what the model makes of it.

    image, reconstruction: uint8 (C, H, W); z: (D,) float32 posterior mean; map_xy: its place on the PCA map
    of the test codes; elbo and iw_nll in nats (k samples); recon_error: MSE on [0, 1]; scores: a reading per
    score (ALL_SCORES order); neighbours: training-split indices and code distances (n,), nearest first, with
    their images (n, C, H, W); on_manifold: the verdict of ``score``."""

    name: str
    image: np.ndarray
    reconstruction: np.ndarray
    z: np.ndarray
    map_xy: tuple[float, float]
    elbo: float
    iw_nll: float
    recon_error: float
    k: int
    scores: tuple[ScoreReading, ...]
    neighbour_index: np.ndarray
    neighbour_distance: np.ndarray
    neighbour_images: np.ndarray
    score: str
    on_manifold: bool

    @property
    def verdict(self) -> str:
        return "on the manifold" if self.on_manifold else "off the manifold"

    def reading(self, name: str) -> ScoreReading:
        for r in self.scores:
            if r.name == name:
                return r
        raise ValueError(f"no score {name!r}; scores: {', '.join(r.name for r in self.scores)}")

    @property
    def decisive(self) -> ScoreReading:
        """The reading the verdict comes from."""
        return self.reading(self.score)


@dataclass(frozen=True)
class LocateResult:
    """The located images, and the map they are drawn on: ``map`` of the ``n_test`` test codes, coloured by
    ``labels`` (N,) / ``class_names`` when the data has them."""

    locations: tuple[Location, ...]
    map: LatentMap
    labels: np.ndarray | None
    class_names: tuple[str, ...]
    options: LocateOptions
    n_test: int

    def to_dict(self) -> dict:
        """JSON-ready: how the verdict is calibrated, then one record per image."""
        o = self.options
        return {
            "calibration": {"score": o.score, "percentile": o.percentile, "n_test": self.n_test, "k": o.k,
                            "seed": o.seed, "gmm_components": o.components,
                            "rule": f"off the manifold when {o.score} is above its {o.percentile:g}th percentile "
                                    f"among the {self.n_test} test images"},
            "images": [{
                "image": loc.name, "verdict": loc.verdict, "on_manifold": loc.on_manifold, "score": loc.score,
                "threshold": loc.decisive.threshold, "code": [float(v) for v in loc.z], "map_xy": list(loc.map_xy),
                "reconstruction_mse": loc.recon_error, "elbo_nats": loc.elbo, "iwae_nll_nats": loc.iw_nll, "k": loc.k,
                "scores": {r.name: {"value": r.value, "percentile": r.percentile, "threshold": r.threshold,
                                    "off": r.off} for r in loc.scores},
                "neighbours": [{"train_index": int(i), "distance": float(d)}
                               for i, d in zip(loc.neighbour_index, loc.neighbour_distance)],
            } for loc in self.locations],
        }


@dataclass(frozen=True)
class OODResult:
    """How well each score (ALL_SCORES order) separates the run's ``n_test`` test images from ``n_other``
    images of ``other``, and ``called_off``: the fraction of the other images above each score's threshold
    (``options.percentile`` of the test split, as ``locate`` judges). ``default`` is the score of the verdicts."""

    run: str
    dataset: str
    other: str
    separations: dict[str, Separation]
    called_off: dict[str, float]
    default: str
    options: LocateOptions
    n_test: int
    n_other: int

    def to_dict(self) -> dict:
        """JSON-ready: the run, the two image sets and every score's separation."""
        return {"run": self.run, "dataset": self.dataset, "other": self.other, "n_test": self.n_test,
                "n_other": self.n_other, "default": self.default, "k": self.options.k, "seed": self.options.seed,
                "percentile": self.options.percentile,
                "scores": {name: {"auroc": s.auroc, "aupr": s.aupr, "fpr_at_95_tpr": s.fpr_at_tpr,
                                  "called_off": self.called_off[name]} for name, s in self.separations.items()}}


# -- calibration ---------------------------------------------------------------------------------------------


def _generator(model: Autoencoder, seed: int) -> torch.Generator:
    return torch.Generator(device=model_device(model)).manual_seed(seed)


def score_images(run: Run, model: Autoencoder, images: np.ndarray, options: LocateOptions,
                 progress: Progress = NULL_PROGRESS) -> ManifoldScores:
    """metrics.ood.manifold_scores of uint8 images (N, C, H, W) with the run's GMM (fitted once, cached)."""
    gmm = fitted_gmm(run, model, options.components, options.seed, progress)
    return manifold_scores(model, images, gmm, options.k, options.batch_size, _generator(model, options.seed),
                           progress)


def calibration_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / CALIBRATION_FILE


def _calibration_key(run: Run, n_images: int, options: LocateOptions) -> dict[str, str]:
    return {"format": CALIBRATION_FORMAT, "split": "test", "n_images": str(n_images), "k": str(options.k),
            "seed": str(options.seed), "components": str(options.components), **model_key(run)}


def _read_calibration(path: Path, key: dict[str, str]) -> ManifoldScores | None:
    names = (*SCORES, "elbo", "z")
    arrays = read_keyed(path, key, names, "calibration cache")
    return None if arrays is None else ManifoldScores(**dict(zip(names, arrays)), k=int(key["k"]))


def calibration(run: Run, model: Autoencoder, options: LocateOptions = LocateOptions(),
                progress: Progress = NULL_PROGRESS, compute: bool = True) -> Calibration | None:
    """The test split's scores, computed once per model and settings and cached in ood_calibration.safetensors.
    compute=False: the cached calibration or None, never the minutes of scoring (for interactive callers)."""
    test = run.dataset("test")
    path, key = calibration_path(run.path), _calibration_key(run, len(test), options)
    scores = _read_calibration(path, key)
    if scores is None and not compute:
        return None
    if scores is None:
        log.info("scoring the %d test images of %s (cached in %s)", len(test), test.name, path)
        scores = score_images(run, model, test.images, options, progress)
        arrays = {**{name: getattr(scores, name) for name in (*SCORES, "elbo")}, "z": scores.z}
        save_safetensors(path, arrays, key, framework="numpy")
    combined = combined_score(scores.table(), scores.table(), leave_one_out=True)
    return Calibration(test=scores, combined=combined, percentile=options.percentile)


# -- locate --------------------------------------------------------------------------------------------------


def image_source(text: str) -> LocateRef:
    """An image named on a command line: an existing file, else 'split:index' ('test:12', 'train:3') or plain
    digits (a test index), else a path (which will be reported missing)."""
    text = str(text).strip()
    if Path(text).expanduser().is_file():
        return Path(text).expanduser()
    split, sep, index = text.partition(":")
    if sep and split in SPLITS and index.isdigit():
        return split, int(index)
    if text.isdigit():
        return "test", int(text)
    return Path(text).expanduser()


def _resolve(refs: Sequence[LocateRef], run: Run) -> tuple[np.ndarray, list[str]]:
    """uint8 (Q, C, H, W) images and names ('test:12' or the path) of image references."""
    splits: dict[str, ImageSet] = {}
    images, names = [], []
    for ref in refs:
        ref = image_source(ref) if isinstance(ref, str) else ref
        if isinstance(ref, tuple):
            split, index = ref
            if split not in SPLITS:
                raise ValueError(f"image split must be one of {', '.join(SPLITS)}, got {split!r}")
            if split not in splits:
                splits[split] = run.dataset(split)
            data = splits[split]
            if not 0 <= index < len(data):
                raise ValueError(f"image {split}:{index} is outside the {split} split of {data.name} "
                                 f"(0..{len(data) - 1})")
            images.append(data.images[index])
            names.append(f"{split}:{index}")
        elif isinstance(ref, Path):
            images.append(read_image(ref, run.model_config.image_shape))
            names.append(str(ref))
        else:
            raise ValueError(f"an image must be 'split:index' or an image file path, got {ref!r}")
    if not images:
        raise ValueError("nothing to locate: give 'test:INDEX', 'train:INDEX' or image files")
    return np.stack(images), names


def test_map(run: Run, model: Autoencoder, progress: Progress = NULL_PROGRESS) -> LatentMap:
    """The PCA map of the cached test codes: the explorer's default map, so a located image lands where the
    explorer would put it."""
    _, z_test = cached_codes(run, model, "test", progress)
    return cached_map(run, z_test, "pca")


def locate_images(
    run: Run, model: Autoencoder, images: np.ndarray, names: Sequence[str], options: LocateOptions = LocateOptions(),
    progress: Progress = NULL_PROGRESS, calibrated: Calibration | None = None, the_map: LatentMap | None = None,
) -> tuple[Location, ...]:
    """Locate uint8 images (Q, C, H, W) of the model's shape: scores with percentiles and the verdict, nearest
    training images, reconstruction and place on the map. The one function behind every located image
    (the CLI, and an explorer upload), so all of them give the same verdict."""
    if len(names) != len(images):
        raise ValueError(f"{len(names)} names for {len(images)} images")
    calibrated = calibrated or calibration(run, model, options, progress)
    train, z_train = cached_codes(run, model, "train", progress)
    the_map = the_map or test_map(run, model, progress)
    # one image at a time, each with a freshly seeded generator: an image's numbers never depend on its company
    gmm = fitted_gmm(run, model, options.components, options.seed, progress)
    scores = ManifoldScores.concatenate([
        manifold_scores(model, images[i : i + 1], gmm, options.k, 1, _generator(model, options.seed))
        for i in range(len(images))
    ])
    values = calibrated.score_values(scores)
    thresholds = {name: calibrated.threshold(name) for name in ALL_SCORES}
    percentiles = {name: percentile_of(values[name], calibrated.values(name)) for name in ALL_SCORES}
    near = nearest_train(scores.z, z_train, options.neighbours)
    recon = decode_latents(model, scores.z)
    xy = the_map.to_map(scores.z)
    out = []
    for i, name in enumerate(names):
        readings = tuple(ScoreReading(s, float(values[s][i]), float(percentiles[s][i]), thresholds[s],
                                      bool(values[s][i] > thresholds[s])) for s in ALL_SCORES)
        out.append(Location(
            name=name, image=images[i], reconstruction=recon[i], z=scores.z[i],
            map_xy=(float(xy[i, 0]), float(xy[i, 1])), elbo=float(scores.elbo[i]), iw_nll=float(scores.nll[i]),
            recon_error=float(scores.recon[i]), k=scores.k,
            scores=readings, neighbour_index=near.index[i], neighbour_distance=near.distance[i],
            neighbour_images=train.images[near.index[i]], score=options.score,
            on_manifold=not readings[ALL_SCORES.index(options.score)].off,
        ))
    return tuple(out)


def locate(
    run_dir: str | Path, refs: Sequence[LocateRef], options: LocateOptions = LocateOptions(), device: Device = "cpu",
    progress: Progress = NULL_PROGRESS,
) -> LocateResult:
    """Locate images named by ``refs`` (("test", 12), "train:3" or image files) in the run's latent space."""
    run, model = open_model(run_dir, device)
    images, names = _resolve(refs, run)
    calibrated = calibration(run, model, options, progress)
    the_map = test_map(run, model, progress)
    locations = locate_images(run, model, images, names, options, progress, calibrated, the_map)
    labels, class_names, _ = colouring(run.dataset("test"))
    return LocateResult(locations=locations, map=the_map, labels=labels, class_names=class_names, options=options,
                        n_test=len(calibrated.test))


# -- ood -----------------------------------------------------------------------------------------------------


def other_images(
    run: Run, other: str | Path | np.ndarray | ImageSet, n: int | None = None, split: str | None = None,
    data_dir: str | Path | None = None, seed: int = 0,
) -> tuple[np.ndarray, str]:
    """The images to tell apart from the run's, uint8 (N, C, H, W) at the model's shape, and their name.

    other: a dataset name (its ``split``, default test) or an image folder (all its images unless ``split``),
    resized to the run's image shape; or images already in memory. n: at most this many (the first n)."""
    shape = run.model_config.image_shape
    if isinstance(other, ImageSet):
        images, name = other.images, other.name
    elif isinstance(other, np.ndarray):
        images, name = other, "images"
    elif isinstance(other, (str, Path)):
        named = str(other).lower() in available()
        if not named and not Path(other).expanduser().is_dir():
            raise ValueError(f"{other}: expected a dataset name ({', '.join(available())}) or an image folder")
        if named and data_dir is None and str(other).lower() == str(run.data_info.get("name")).lower():
            data_dir = run.data_info.get("data_dir")  # the run's own data, from where the run read it
        data = load_data(other, split=split or ("test" if named else None), data_dir=data_dir, size=shape[1],
                         channels=shape[0], seed=seed, n=n)
        images, name = data.images, data.name if named else str(other)
    else:
        raise ValueError(f"other images must be a dataset name, a folder or uint8 images, got {type(other).__name__}")
    images = images[:n] if n is not None else images
    if images.dtype != np.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != tuple(shape):
        raise ValueError(f"other images must be uint8 (N, {', '.join(map(str, shape))}) like the run's, got "
                         f"{images.dtype} {images.shape}")
    if len(images) == 0:
        raise ValueError(f"{name}: no images to compare with")
    return images, name


def ood(
    run_dir: str | Path, other: str | Path | np.ndarray | ImageSet, options: LocateOptions = LocateOptions(),
    n: int | None = None, split: str | None = None, data_dir: str | Path | None = None, device: Device = "cpu",
    progress: Progress = NULL_PROGRESS,
) -> OODResult:
    """AUROC, AUPR and FPR at 95% TPR of every score, the run's test split against ``other`` (other_images)."""
    run, model = open_model(run_dir, device)
    images, name = other_images(run, other, n, split, data_dir, options.seed)
    calibrated = calibration(run, model, options, progress)
    values = calibrated.score_values(score_images(run, model, images, options, progress))
    separations = {s: separation(calibrated.values(s), values[s]) for s in ALL_SCORES}
    called_off = {s: float((values[s] > calibrated.threshold(s)).mean()) for s in ALL_SCORES}
    return OODResult(run=str(run.path), dataset=str(run.data_info.get("name")), other=name, separations=separations,
                     called_off=called_off, default=options.score, options=options, n_test=len(calibrated.test),
                     n_other=len(images))
