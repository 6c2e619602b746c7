"""How well the on-manifold scores tell a run's test split from another data set: AUROC, AUPR and FPR at 95%
TPR of every score (``latentspace ood``), the evidence behind the default score (benchmarks/ood.py)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentspace.api.calibration import Calibration, LocateOptions, calibration, score_images
from latentspace.api.common import Device, open_model
from latentspace.data import ImageSet, available
from latentspace.data import load as load_data
from latentspace.metrics.ood import ALL_SCORES
from latentspace.metrics.separation import Separation, separation
from latentspace.models import Autoencoder
from latentspace.train.run import Run
from latentspace.utils.progress import NULL_PROGRESS, Progress


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
    separations, called_off = _against(run, model, images, options, calibrated, progress)
    return OODResult(run=str(run.path), dataset=str(run.data_info.get("name")), other=name, separations=separations,
                     called_off=called_off, default=options.score, options=options, n_test=len(calibrated.test),
                     n_other=len(images))


def _against(run: Run, model: Autoencoder, images: np.ndarray, options: LocateOptions, calibrated: Calibration,
             progress: Progress) -> tuple[dict[str, Separation], dict[str, float]]:
    """Every score's separation of the test split from ``images``, and the fraction of them each calls off."""
    values = calibrated.score_values(score_images(run, model, images, options, progress))
    separations = {s: separation(calibrated.values(s), values[s]) for s in ALL_SCORES}
    called_off = {s: float((values[s] > calibrated.threshold(s)).mean()) for s in ALL_SCORES}
    return separations, called_off


# -- the check `evaluate` runs on every model ------------------------------------------------------------------

SALT_PEPPER = 0.2  # the share of pixels set to black or white in the salt-and-pepper set
CONSTRUCTED = ("uniform noise", "flipped upside down", "20% salt and pepper")


def constructed_sets(images: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Off-manifold sets made from uint8 images (N, C, H, W) of any data set, each (N, C, H, W): uniform noise,
    the images flipped upside down, and the images with each pixel, with probability SALT_PEPPER, set to 0 or
    255 at even odds (all channels alike). A flip leaves the manifold only for data with an up and a down
    (digits, faces; not most shapes)."""
    rng = np.random.default_rng(seed)
    salted = images.copy()
    hit = np.broadcast_to(rng.random((len(images), 1, *images.shape[2:])) < SALT_PEPPER, images.shape)
    level = np.broadcast_to(np.where(rng.random((len(images), 1, *images.shape[2:])) < 0.5, 0, 255), images.shape)
    salted[hit] = level[hit].astype(np.uint8)
    return {
        "uniform noise": rng.integers(0, 256, images.shape, dtype=np.uint8),
        "flipped upside down": np.ascontiguousarray(images[:, :, ::-1, :]),
        "20% salt and pepper": salted,
    }


@dataclass(frozen=True)
class OffSet:
    """The default score on one constructed set: AUROC against the test split, and the share called off."""

    name: str
    auroc: float
    called_off: float


@dataclass(frozen=True)
class ManifoldCheck:
    """Does the run's default on-manifold score tell its test images from constructed off-manifold ones?"""

    score: str
    percentile: float
    threshold: float
    n_test: int
    n_other: int
    k: int
    sets: tuple[OffSet, ...]
    protocol: str


def manifold_check(run: Run, model: Autoencoder, options: LocateOptions, n: int, seed: int,
                   progress: Progress = NULL_PROGRESS) -> ManifoldCheck:
    """The default score of ``locate`` against the constructed sets of ``n`` test images (seeded); the test
    split's calibration is the one `locate`, `ood` and the explorer read (computed once, cached)."""
    calibrated = calibration(run, model, options, progress)
    test = run.dataset("test").images
    chosen = np.sort(np.random.default_rng(seed).permutation(len(test))[: min(n, len(test))])
    sets = []
    for name, images in constructed_sets(test[chosen], seed).items():
        separations, called_off = _against(run, model, images, options, calibrated, progress)
        sets.append(OffSet(name, separations[options.score].auroc, called_off[options.score]))
    protocol = (f"`locate`'s verdict: the score '{options.score}' (IWAE k={options.k}) of each image against its "
                f"{options.percentile:g}th percentile among the {len(calibrated.test)} test images; AUROC of the "
                f"test split against {len(chosen)} seeded test images made off-manifold (noise, flipped, 20% salt "
                "and pepper), and the share of those the verdict calls off")
    return ManifoldCheck(options.score, options.percentile, calibrated.threshold(options.score),
                         len(calibrated.test), len(chosen), options.k, tuple(sets), protocol)
