"""How realistic each step of an interpolation path looks, by three independent scores.

For every frame (a uint8 image) of a path:

- ``classifier_confidence``: how sure the evaluator (metrics.evaluator) is that the frame shows *some* class:
  by default the mean over all its heads of each head's largest class probability (one head named: that head's
  largest probability alone). Each head's term is in [1/K, 1]. Real digits score near 1; a cross-fade of a 3 and
  a 7 that is neither scores lower; a face whose hair is between two colours, or whose glasses are half there, lowers
  that head's term. Averaging every head means no one attribute (say hair colour) stands in for the whole
  image. Higher is more real.
- ``elbo``: the model's ELBO of the frame in nats (reconstruction term averaged over a few posterior
  samples). A frame the model itself finds unlikely scores low. Higher is more real. (For an 'ae' model
  this is just -recon_nll.)
- ``nearest_distance``: root-mean-square pixel difference, on [0, 1] intensities, to the closest training
  image: min_t sqrt(mean_p (x_p - t_p)^2). 0 for a copy of a training image. Lower is more like the data.

``pair_table`` turns these into one row per path kind (pixel cross-fade, latent lerp, latent slerp) over many
random test pairs, averaging the middle of each path (where the paths differ most; the ends are the real
images or their reconstructions), and adds two scores of the frames as a set:

- ``manifold_precision``: the share of frames inside the real manifold in the evaluator's feature space, as in
  improved precision (Kynkaenniemi et al. 2019, metrics.fidelity): the union of balls around the features of
  real test images, each ball's radius the distance to that image's k-th (k = 3) nearest real neighbour. It asks
  whether a frame looks like some real image as a whole, where the confidence asks whether each head can name a
  class. In [0, 1], higher is more real.
- ``hf_ratio``: the frames' high-frequency share of spectral power over the real test images' (metrics.sharpness):
  1 = as sharp as the data, below 1 blurrier (decoders tend to blur), above 1 more edges than the data (a
  cross-fade carries the edges of both ends).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from latentspace.data import ImageSet
from latentspace.data.transforms import to_float
from latentspace.latent.codes import model_device
from latentspace.latent.interpolate import InterpolationPaths, interpolation_paths
from latentspace.metrics.evaluator import Evaluator
from latentspace.metrics.fidelity import inside_manifold, knn_radii
from latentspace.metrics.likelihood import per_image_elbo
from latentspace.metrics.sharpness import hf_share, hf_shares
from latentspace.utils.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)

PATHS = ("pixel", "lerp", "slerp")
SCORES = ("classifier_confidence", "elbo", "nearest_distance")  # per frame, RealnessScores
TABLE_SCORES = ("classifier_confidence", "manifold_precision", "elbo", "nearest_distance", "hf_ratio")  # pair_table
MANIFOLD_K = 3  # the neighbour whose distance sets each real ball's radius (the paper's k)
# At most this many (seeded) test images make the real manifold and the sharpness scale: a whole 10k test split.
# Fewer real points leave the outliers' balls wide enough to catch noise (the tests' MNIST evaluator: 12% of
# uniform-noise images inside the balls of 1,000 test digits, 1% inside those of 10,000).
MANIFOLD_REFERENCE = 10_000
FRAME_HEADER = ("path", "classifier confidence (higher = more real)", "ELBO, nats (higher)",
                "nearest train RMS (lower)")  # one pair's frames: the three per-frame scores
ELBO_SAMPLES = 4
ALL_HEADS = "mean of all heads"  # RealnessTable.head when confidence averages more than one head
NEAREST_CHUNK = 8192  # training images per distance block: (queries x chunk) float32 at a time


@dataclass(frozen=True)
class RealnessScores:
    """Per-frame scores of T images, each (T,) float64; classifier_confidence is None without an evaluator."""

    classifier_confidence: np.ndarray | None
    elbo: np.ndarray
    nearest_distance: np.ndarray

    def take(self, index: np.ndarray | slice) -> "RealnessScores":
        """The scores of the frames at ``index``."""
        conf = self.classifier_confidence
        return RealnessScores(None if conf is None else conf[index], self.elbo[index], self.nearest_distance[index])


def nearest_distance(
    images: np.ndarray, train_images: np.ndarray, chunk: int = NEAREST_CHUNK, device: str | torch.device = "cpu"
) -> np.ndarray:
    """RMS pixel distance of each uint8 image (N, C, H, W) to its nearest uint8 training image (M, C, H, W),
    on [0, 1] intensities: (N,) float64, min_m sqrt(mean((x - t_m)^2)).

    The nearest image is found block by block with ||x||^2 - 2 x.t + ||t||^2 (one float32 matrix product per
    block of ``chunk`` training images and ``chunk`` queries); the distance to it is then recomputed directly,
    so that an exact copy of a training image scores exactly 0 rather than float32 cancellation noise."""
    if images.ndim != 4 or train_images.ndim != 4 or images.shape[1:] != train_images.shape[1:]:
        raise ValueError(
            f"nearest_distance needs images and train_images of the same (C, H, W), got {images.shape} and "
            f"{train_images.shape}"
        )
    if images.dtype != np.uint8 or train_images.dtype != np.uint8:
        raise ValueError(f"nearest_distance needs uint8 pixels, got {images.dtype} and {train_images.dtype}")
    if len(train_images) == 0:
        raise ValueError("nearest_distance needs at least one training image, got 0")
    if len(images) > chunk:
        starts = range(0, len(images), chunk)
        return np.concatenate([nearest_distance(images[i : i + chunk], train_images, chunk, device) for i in starts])
    x = to_float(images).flatten(1).to(device)
    best = torch.full((len(x),), math.inf, device=device)
    best_index = torch.zeros(len(x), dtype=torch.long, device=device)
    for start in range(0, len(train_images), chunk):
        t = to_float(train_images[start : start + chunk]).flatten(1).to(device)
        # ||x||^2 is the same for every t, so it can wait until after the min.
        partial = torch.addmm(t.pow(2).sum(1).unsqueeze(0), x, t.T, alpha=-2.0)
        value, index = partial.min(dim=1)
        better = value < best
        best = torch.where(better, value, best)
        best_index = torch.where(better, index + start, best_index)
    nearest = to_float(train_images[best_index.cpu().numpy()]).flatten(1).to(device)
    return (x - nearest).double().pow(2).mean(1).sqrt().cpu().numpy()


def classifier_confidence(evaluator: Evaluator, images: np.ndarray, head: str | None = None) -> np.ndarray:
    """(N,) float64 confidence of uint8 images (N, C, H, W): head None -> the mean over every evaluator head of
    that head's largest class probability; a head name -> that head's largest class probability alone."""
    if head is not None:
        return evaluator.max_prob(images, head).astype(np.float64)
    probs = evaluator.predict_proba(images)
    return np.mean([p.max(axis=1).astype(np.float64) for p in probs.values()], axis=0)


def confidence_head(evaluator: Evaluator, head: str | None) -> str:
    """What ``classifier_confidence`` measures, for tables: the head's name, or ALL_HEADS when it averages more
    than one head (with a single head the mean is that head, so its name is used)."""
    if head is not None:
        return evaluator.config.head(head).name
    heads = evaluator.config.heads
    return heads[0].name if len(heads) == 1 else ALL_HEADS


def on_manifold(
    evaluator: Evaluator, images: np.ndarray, real_images: np.ndarray, k: int = MANIFOLD_K
) -> np.ndarray:
    """(N,) bool: whether each uint8 image (N, C, H, W) lies inside the manifold of the uint8 ``real_images``
    (M, C, H, W) in the evaluator's features (``Evaluator.features``): within the k-th-nearest-neighbour radius of
    some real image (metrics.fidelity). Its mean is the images' improved precision; needs 1 <= k < M."""
    real = evaluator.features(real_images)
    return inside_manifold(evaluator.features(images), real, knn_radii(real, k))


def realness_scores(
    images: np.ndarray,
    model: torch.nn.Module,
    evaluator: Evaluator | None = None,
    head: str | None = None,
    train_images: np.ndarray | None = None,
    generator: torch.Generator | None = None,
    elbo_samples: int = ELBO_SAMPLES,
    progress: Progress = NULL_PROGRESS,
) -> RealnessScores:
    """The three scores of every uint8 frame (T, C, H, W). head: the evaluator head whose top probability is the
    confidence (default None: the mean over all heads, see ``classifier_confidence``). train_images: uint8
    (N, C, H, W) for nearest_distance (None: NaN). generator: the posterior-sample noise of the ELBO (on the
    model's device). progress: advances once per score."""
    progress.start(len(SCORES), "realness")
    try:
        conf = None if evaluator is None else classifier_confidence(evaluator, images, head)
        progress.advance(1)
        elbo = per_image_elbo(model, images, n_samples=elbo_samples, generator=generator)
        progress.advance(1)
        if train_images is None:
            dist = np.full(len(images), np.nan)
        else:
            dist = nearest_distance(images, train_images, device=model_device(model))
        progress.advance(1)
    finally:
        progress.close()
    return RealnessScores(conf, elbo, dist)


def path_realness(
    paths: InterpolationPaths,
    model: torch.nn.Module,
    evaluator: Evaluator | None = None,
    train_images: np.ndarray | None = None,
    generator: torch.Generator | None = None,
    head: str | None = None,
) -> dict[str, RealnessScores]:
    """Scores of every frame of the three paths, {'pixel' | 'lerp' | 'slerp': RealnessScores (T,)}, scored in
    one batch."""
    frames = np.concatenate([getattr(paths, name) for name in PATHS])
    scores = realness_scores(frames, model, evaluator, head, train_images, generator)
    t = len(paths.t)
    return {name: scores.take(slice(i * t, (i + 1) * t)) for i, name in enumerate(PATHS)}


@dataclass(frozen=True)
class PathSummary:
    """One path kind's scores over the middle frames: mean over pairs and its standard error (NaN: not scored).
    manifold_precision: share of middle frames inside the real manifold; hf_ratio: their high-frequency share
    over the real images' (the real share taken as exact in its standard error)."""

    path: str
    classifier_confidence: float
    classifier_confidence_se: float
    manifold_precision: float
    manifold_precision_se: float
    elbo: float
    elbo_se: float
    nearest_distance: float
    nearest_distance_se: float
    hf_ratio: float
    hf_ratio_se: float


@dataclass(frozen=True)
class RealnessTable:
    """Realness of pixel / lerp / slerp paths over ``n_pairs`` random test pairs of ``steps`` frames.

    summaries: one PathSummary per path kind. t: (T,) frame positions. curves[path][score]: (T,) mean over
    pairs at each t (for plots of realness along the path; classifier_confidence absent without an evaluator).
    middle: the (lo, hi) range of t averaged in the summaries, both ends included. head: what the confidence
    measured: one head's name, or ALL_HEADS ("mean of all heads"); None without an evaluator. manifold_k: the k
    of the real manifold's balls; n_reference: the real test images behind the manifold and the sharpness scale;
    real_hf_share: their mean high-frequency share (the denominator of hf_ratio).
    """

    summaries: tuple[PathSummary, ...]
    t: np.ndarray
    curves: dict[str, dict[str, np.ndarray]]
    n_pairs: int
    steps: int
    middle: tuple[float, float]
    head: str | None
    seed: int
    manifold_k: int
    n_reference: int
    real_hf_share: float

    HEADER = (*FRAME_HEADER[:2], f"manifold precision, k={MANIFOLD_K} (higher)", *FRAME_HEADER[2:],
              "high-frequency ratio to real (1 = as sharp)")

    def rows(self) -> list[tuple[str, str, str, str, str, str]]:
        """One printable row per path kind, each score as 'mean ± standard error' ('-' when not scored)."""
        def fmt(mean: float, se: float, digits: int) -> str:
            return "-" if math.isnan(mean) else f"{mean:.{digits}f} ± {se:.{digits}f}"

        return [
            (s.path, fmt(s.classifier_confidence, s.classifier_confidence_se, 3),
             fmt(s.manifold_precision, s.manifold_precision_se, 3), fmt(s.elbo, s.elbo_se, 1),
             fmt(s.nearest_distance, s.nearest_distance_se, 4), fmt(s.hf_ratio, s.hf_ratio_se, 3))
            for s in self.summaries
        ]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready numbers (NaN, i.e. not scored, becomes None)."""
        def num(v: float) -> float | None:
            return None if math.isnan(v) else float(v)

        return {
            "n_pairs": self.n_pairs, "steps": self.steps, "middle": list(self.middle), "head": self.head,
            "seed": self.seed, "manifold_k": self.manifold_k, "n_reference": self.n_reference,
            "real_hf_share": num(self.real_hf_share), "t": [float(v) for v in self.t],
            "paths": {s.path: {k: num(getattr(s, k)) for k in PathSummary.__dataclass_fields__ if k != "path"}
                      for s in self.summaries},
            "curves": {p: {k: [num(v) for v in c] for k, c in scores.items()} for p, scores in self.curves.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RealnessTable":
        """The inverse of ``to_dict`` (None back to NaN); KeyError / TypeError / ValueError when ``d`` is not one."""
        def num(v: float | None) -> float:
            return float("nan") if v is None else float(v)

        paths = sorted(d["paths"].items(), key=lambda kv: PATHS.index(kv[0]))  # JSON files sort their keys
        summaries = tuple(PathSummary(path, **{k: num(v) for k, v in s.items()}) for path, s in paths)
        curves = {p: {k: np.array([num(v) for v in c]) for k, c in scores.items()} for p, scores in d["curves"].items()}
        lo, hi = d["middle"]
        return cls(summaries, np.asarray(d["t"], dtype=np.float32), curves, int(d["n_pairs"]), int(d["steps"]),
                   (float(lo), float(hi)), d["head"], int(d["seed"]), int(d["manifold_k"]), int(d["n_reference"]),
                   num(d["real_hf_share"]))


def random_pairs(n: int, n_pairs: int, seed: int) -> np.ndarray:
    """(n_pairs, 2) int64 indices of uniformly random ordered pairs of distinct items among n (pairs may repeat)."""
    if n < 2:
        raise ValueError(f"pairs need at least 2 images, got {n}")
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n, size=n_pairs)
    b = rng.integers(0, n - 1, size=n_pairs)
    return np.stack([a, b + (b >= a)], axis=1).astype(np.int64)


def pair_table(
    model: torch.nn.Module,
    test_set: ImageSet,
    train_images: np.ndarray | None,
    evaluator: Evaluator | None = None,
    n_pairs: int = 100,
    steps: int = 10,
    seed: int = 0,
    middle: tuple[float, float] = (0.25, 0.75),
    head: str | None = None,
    progress: Progress = NULL_PROGRESS,
) -> RealnessTable:
    """Realness of the three path kinds between ``n_pairs`` test pairs drawn uniformly at random (seeded; the
    two ends differ, their classes may not: the table measures typical pairs, not only cross-class ones).

    Every frame of every path is scored in one batch; each pair's scores are averaged over the frames with
    t in [middle[0], middle[1]], and the table reports the mean over pairs with its standard error
    (std over pairs / sqrt(n_pairs): the pairs are independent, the frames of one path are not). The real
    manifold (k = MANIFOLD_K) and the real high-frequency share come from at most MANIFOLD_REFERENCE seeded test
    images; manifold precision needs the evaluator and more than k of them (else NaN)."""
    if n_pairs < 2:
        raise ValueError(f"n_pairs must be >= 2 to give a standard error, got {n_pairs}")
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)
    in_middle = (t >= middle[0] - 1e-6) & (t <= middle[1] + 1e-6)
    if not in_middle.any():
        raise ValueError(f"middle={middle} holds none of the {steps} frame positions t = {np.round(t, 3).tolist()}")
    pairs = random_pairs(len(test_set), n_pairs, seed)
    frames = _pair_frames(model, test_set.images, pairs, steps, progress)  # (P, 3, T, C, H, W)
    generator = torch.Generator(model_device(model)).manual_seed(seed)
    flat = frames.reshape(-1, *frames.shape[3:])
    scores = realness_scores(flat, model, evaluator, head, train_images, generator, progress=progress)
    reference = reference_images(test_set.images, seed)
    arrays = {**_score_arrays(scores), **_set_scores(flat, reference, evaluator, progress)}
    per_frame = {k: v.reshape(n_pairs, len(PATHS), steps) for k, v in arrays.items()}
    summaries = tuple(_summary(name, {k: v[:, i][:, in_middle] for k, v in per_frame.items()})
                      for i, name in enumerate(PATHS))
    curves = {name: {k: v[:, i].mean(0) for k, v in per_frame.items()} for i, name in enumerate(PATHS)}
    used_head = None if evaluator is None else confidence_head(evaluator, head)
    return RealnessTable(summaries, t, curves, n_pairs, steps, (float(middle[0]), float(middle[1])), used_head, seed,
                         manifold_k=MANIFOLD_K, n_reference=len(reference), real_hf_share=hf_share(reference))


def reference_images(images: np.ndarray, seed: int, n: int = MANIFOLD_REFERENCE) -> np.ndarray:
    """The real images pair_table compares frames with: all of uint8 ``images`` (N, C, H, W) when N <= n, else a
    seeded sorted subset of n of them."""
    if len(images) <= n:
        return images
    return images[np.sort(np.random.default_rng(seed).choice(len(images), size=n, replace=False))]


def _set_scores(
    frames: np.ndarray, reference: np.ndarray, evaluator: Evaluator | None, progress: Progress
) -> dict[str, np.ndarray]:
    """Per frame (T,) float64: 'hf_ratio' (the frame's high-frequency share over the reference's mean share) and,
    with an evaluator and more than MANIFOLD_K reference images, 'manifold_precision' (1.0 inside the reference
    manifold, else 0.0)."""
    out: dict[str, np.ndarray] = {}
    progress.start(2, "manifold and sharpness")
    try:
        if evaluator is not None and len(reference) > MANIFOLD_K:
            out["manifold_precision"] = on_manifold(evaluator, frames, reference).astype(np.float64)
        elif evaluator is not None:
            log.info("only %d reference test images, k = %d: no manifold precision", len(reference), MANIFOLD_K)
        progress.advance(1)
        real_share = hf_share(reference)
        if real_share > 0:
            out["hf_ratio"] = hf_shares(frames) / real_share
        else:
            log.info("the reference test images have no high-frequency power: no high-frequency ratio")
        progress.advance(1)
    finally:
        progress.close()
    return out


def _pair_frames(
    model: torch.nn.Module, images: np.ndarray, pairs: np.ndarray, steps: int, progress: Progress
) -> np.ndarray:
    """uint8 (P, 3, T, C, H, W): the pixel, lerp and slerp frames of every pair."""
    out = np.empty((len(pairs), len(PATHS), steps, *images.shape[1:]), np.uint8)
    progress.start(len(pairs), "interpolate")
    try:
        for p, (a, b) in enumerate(pairs):
            paths = interpolation_paths(model, images[a], images[b], steps)
            for i, name in enumerate(PATHS):
                out[p, i] = getattr(paths, name)
            progress.advance(1)
    finally:
        progress.close()
    return out


def _score_arrays(scores: RealnessScores) -> dict[str, np.ndarray]:
    return {k: getattr(scores, k) for k in SCORES if getattr(scores, k) is not None}


def _summary(path: str, per_frame: dict[str, np.ndarray]) -> PathSummary:
    """per_frame[score]: (P, M) middle-frame scores of P pairs -> mean and standard error over pairs."""
    values: dict[str, float] = {}
    for k in TABLE_SCORES:
        if k not in per_frame or np.isnan(per_frame[k]).all():
            values[k], values[f"{k}_se"] = math.nan, math.nan
            continue
        per_pair = per_frame[k].mean(axis=1)
        values[k] = float(per_pair.mean())
        values[f"{k}_se"] = float(per_pair.std(ddof=1) / math.sqrt(len(per_pair)))
    return PathSummary(path=path, **values)
