"""Is this image on the manifold? Where an image lands in a run's latent space, which real training images are
its neighbours, and whether the model counts it as one of its own (``locate``).

The scores are metrics.ood's, higher = more off the manifold: ``nll`` (IWAE bound), ``complexity`` (NLL minus
PNG length), ``code_density`` (-log p(z) under the run's GMM), ``recon`` (MSE), ``framing`` (the image's moments
against the training images') and ``combined`` (Fisher's combination of the tail probabilities of the last
four), the default: benchmarks/ood.py measured it against each single score (README, "Is this image on the
manifold?"). Each is read against the run's test split (api.calibration); the verdict is the default score's,
the others are reported with their percentile and threshold. Every image is scored on its own with a freshly
seeded generator, so an image gets the same numbers whatever it is located with.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentspace.api.calibration import Calibration, LocateOptions, calibration, score_images
from latentspace.api.common import Device, cached_codes, colouring, open_model, read_image
from latentspace.api.points import LatentMap, cached_map, nearest_train
from latentspace.data import ImageSet
from latentspace.latent.codes import decode_latents
from latentspace.metrics.ood import ALL_SCORES, ManifoldScores, percentile_of
from latentspace.models import Autoencoder
from latentspace.train.run import Run
from latentspace.utils.progress import NULL_PROGRESS, Progress

SPLITS = ("train", "test")

LocateRef = tuple[str, int] | str | Path  # ("test", 12), "test:12", or an image file


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
    scores, readings = judge(run, model, images, options, calibrated)
    near = nearest_train(scores.z, z_train, options.neighbours)
    recon = decode_latents(model, scores.z)
    xy = the_map.to_map(scores.z)
    out = []
    for i, name in enumerate(names):
        out.append(Location(
            name=name, image=images[i], reconstruction=recon[i], z=scores.z[i],
            map_xy=(float(xy[i, 0]), float(xy[i, 1])), elbo=float(scores.elbo[i]), iw_nll=float(scores.nll[i]),
            recon_error=float(scores.recon[i]), k=scores.k,
            scores=readings[i], neighbour_index=near.index[i], neighbour_distance=near.distance[i],
            neighbour_images=train.images[near.index[i]], score=options.score,
            on_manifold=not readings[i][ALL_SCORES.index(options.score)].off,
        ))
    return tuple(out)


def judge(
    run: Run, model: Autoencoder, images: np.ndarray, options: LocateOptions, calibrated: Calibration,
) -> tuple[ManifoldScores, list[tuple[ScoreReading, ...]]]:
    """The scores of uint8 images (Q, C, H, W) and, per image, a reading of every score (ALL_SCORES order)
    against the calibration: the verdict of `locate` and of an explorer upload alike. Each image is scored on
    its own: its numbers never depend on its company."""
    scores = score_images(run, model, images, options, each_alone=True)
    values = calibrated.score_values(scores)
    thresholds = {name: calibrated.threshold(name) for name in ALL_SCORES}
    percentiles = {name: percentile_of(values[name], calibrated.values(name)) for name in ALL_SCORES}
    readings = [tuple(ScoreReading(s, float(values[s][i]), float(percentiles[s][i]), thresholds[s],
                                   bool(values[s][i] > thresholds[s])) for s in ALL_SCORES)
                for i in range(len(images))]
    return scores, readings


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
