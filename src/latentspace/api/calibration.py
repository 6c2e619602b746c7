"""Calibration of the on-manifold scores against a run's own test images: the options every located image is
scored with, the scores of the whole test split (computed once, cached), and the training-split models the
scores need (the run's GMM over the train codes, the framing Gaussian over the train images' moments).

The whole test split is scored once and cached in ``<run>/ood_calibration.safetensors`` (one (N,) array per
score plus the codes, keyed by the weights, k, seed and the GMM's settings); the GMM is the run's sampler
(``gmm.json``), the framing model is ``framing.json``. Each score's threshold is its ``percentile``-th percentile
(default 99) among the test images, so about 1% of real test images are called off by it. The IW bound is
random: its k samples come from a generator seeded with ``seed``, afresh for every call.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from latentspace.api.common import model_key, read_keyed
from latentspace.api.points import NEIGHBOURS
from latentspace.api.priors import fitted_gmm
from latentspace.latent.codes import model_device
from latentspace.metrics.framing import FramingModel
from latentspace.metrics.ood import ALL_SCORES, COMBINED, SCORES, ManifoldScores, combined_score, manifold_scores
from latentspace.models import Autoencoder
from latentspace.train.run import Run
from latentspace.train.zoo import resolve_run
from latentspace.utils.files import read_json, safetensors_metadata, save_safetensors, write_json
from latentspace.utils.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)

CALIBRATION_FILE = "ood_calibration.safetensors"
CALIBRATION_FORMAT = "latentspace.ood/2"  # 2: the framing score
FRAMING_FILE = "framing.json"
DEFAULT_SCORE = COMBINED

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


# -- calibration ---------------------------------------------------------------------------------------------


def _generator(model: Autoencoder, seed: int) -> torch.Generator:
    return torch.Generator(device=model_device(model)).manual_seed(seed)


def score_images(run: Run, model: Autoencoder, images: np.ndarray, options: LocateOptions,
                 progress: Progress = NULL_PROGRESS, each_alone: bool = False) -> ManifoldScores:
    """metrics.ood.manifold_scores of uint8 images (N, C, H, W) with the run's GMM and framing model (fitted
    once, cached). each_alone: score every image by itself with a freshly seeded generator, so that an image's
    numbers never depend on the images scored with it (what `locate` and the explorer promise)."""
    gmm, framing = fitted_gmm(run, model, options.components, options.seed, progress), fitted_framing(run, model)
    if not each_alone:
        return manifold_scores(model, images, gmm, framing, options.k, options.batch_size,
                               _generator(model, options.seed), progress)
    return ManifoldScores.concatenate([
        manifold_scores(model, images[i : i + 1], gmm, framing, options.k, 1, _generator(model, options.seed))
        for i in range(len(images))
    ])


def calibration_path(run_dir: str | Path) -> Path:
    return resolve_run(run_dir) / CALIBRATION_FILE


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


def stored_calibration(run: Run, model: Autoencoder) -> tuple[LocateOptions, Calibration] | None:
    """Whatever calibration the run folder holds for the current weights, with the options it was made with
    (k, seed, GMM components; the rest LocateOptions' defaults), else None. For interactive callers (the
    explorer), which must give the verdict `locate` gives without scoring the whole test split themselves."""
    path = calibration_path(run.path)
    if not path.is_file():
        return None
    try:
        meta = safetensors_metadata(path)
        options = LocateOptions(k=int(meta["k"]), seed=int(meta["seed"]), components=int(meta["components"]))
    except (KeyError, ValueError):
        return None
    calibrated = calibration(run, model, options, compute=False)
    return None if calibrated is None else (options, calibrated)


def fitted_framing(run: Run, model: Autoencoder) -> FramingModel:
    """The Gaussian over the train split's image moments (metrics.framing), cached in ``<run>/framing.json``
    and keyed like every cache of the run (it depends only on the data, which a retraining may change)."""
    path, key = run.path / FRAMING_FILE, {"format": "latentspace.framing/1", **model_key(run)}
    if path.is_file():
        saved = read_json(path)
        if isinstance(saved, dict) and saved.get("key") == key and "model" in saved:
            try:
                return FramingModel.from_dict(saved["model"])
            except (KeyError, TypeError, ValueError) as e:
                log.warning("%s: unreadable (%s); fitting the framing model again", path, e)
    framing = FramingModel.fit(run.dataset("train").images)
    write_json(path, {"key": key, "model": framing.to_dict()})
    return framing
