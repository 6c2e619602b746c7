"""Interpolation between two images through pixel space and latent space, and how real each path looks."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from latentspace.api.common import (
    Device,
    ImageRef,
    keyed_json,
    model_key,
    open_model,
    resolve_image,
    run_evaluator,
)
from latentspace.latent.codes import model_device
from latentspace.latent.interpolate import InterpolationPaths, interpolation_paths
from latentspace.metrics.evaluator import EvaluatorConfig
from latentspace.metrics.realness import (
    SCORES,
    RealnessScores,
    RealnessTable,
    pair_table,
    path_realness,
)
from latentspace.utils.progress import NULL_PROGRESS, Progress

PAIRS_FILE, PAIRS_FORMAT = "realness_pairs.json", "latentspace.realness_pairs/1"
MIDDLE = (0.25, 0.75)  # frames averaged in a path's mean scores, as in metrics.realness.pair_table


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
    run, model = open_model(run_dir, device)
    test = run.dataset("test") if any(isinstance(r, (int, np.integer)) for r in (a, b)) or score else None
    (image_a, name_a), (image_b, name_b) = resolve_image(a, run, test), resolve_image(b, run, test)
    paths = interpolation_paths(model, image_a, image_b, steps)
    scores = None
    if score:
        train = run.dataset("train")
        evaluator = run_evaluator(run, model, train, test, progress, evaluator_config)
        generator = torch.Generator(model_device(model)).manual_seed(seed)
        scores = path_realness(paths, model, evaluator, train.images, generator)
    return InterpolationResult(paths, scores, (name_a, name_b))


def interpolation_table(
    run_dir: str | Path, n_pairs: int = 100, steps: int = 10, seed: int = 0, device: Device = "cpu",
    evaluator_config: EvaluatorConfig | None = None, progress: Progress = NULL_PROGRESS,
) -> RealnessTable:
    """Realness of pixel / lerp / slerp paths over ``n_pairs`` seeded random test pairs (metrics.pair_table),
    cached in ``<run>/realness_pairs.json`` per weights and arguments (not with an ``evaluator_config`` of one's
    own: the cache is the run evaluator's)."""
    run, model = open_model(run_dir, device)

    def measure() -> RealnessTable:
        train, test = run.dataset("train"), run.dataset("test")
        evaluator = run_evaluator(run, model, train, test, progress, evaluator_config)
        return pair_table(model, test, train.images, evaluator, n_pairs=n_pairs, steps=steps, seed=seed,
                          progress=progress)

    if evaluator_config is not None:
        return measure()
    key = {"format": PAIRS_FORMAT, "n_pairs": n_pairs, "steps": steps, "seed": seed, **model_key(run)}
    return keyed_json(run.path / PAIRS_FILE, key, measure, RealnessTable.to_dict, RealnessTable.from_dict)
