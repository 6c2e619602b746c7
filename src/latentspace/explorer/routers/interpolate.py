"""The interpolate panel: from one real image to another through pixel space (a cross-fade) and through
latent space (lerp and slerp), with each frame's realness scores."""
from __future__ import annotations

from typing import Annotated

import numpy as np
import torch
from fastapi import APIRouter
from pydantic import BaseModel, Field

from latentspace.explorer.deps import ExplorerDep, real_image
from latentspace.explorer.schemas import ImageRef, Strict, data_url, floats
from latentspace.latent.interpolate import interpolation_paths
from latentspace.metrics.realness import PATHS, path_realness

router = APIRouter(prefix="/api", tags=["interpolate"])

MAX_STEPS = 64
ELBO_SEED = 0


class InterpolateIn(Strict):
    a: ImageRef
    b: ImageRef
    steps: Annotated[int, Field(ge=2, le=MAX_STEPS, description="Frames per path, both ends included.")] = 12


class PathOut(BaseModel):
    """One path's frames (PNG data URLs) and the scores of each frame (null where not computed)."""

    frames: list[str]
    elbo: list[float | None]
    nearest_distance: list[float | None]
    classifier_confidence: list[float | None] | None


class InterpolateOut(BaseModel):
    """Frames at positions ``t`` along the pixel, lerp and slerp paths. scores: what each score means."""

    t: list[float]
    paths: dict[str, PathOut]
    scores: dict[str, str]


SCORE_NOTES = {
    "elbo": "ELBO in nats, the model's own judgement of the frame (higher = more like its data)",
    "nearest_distance": "RMS pixel distance to the nearest training image (lower = closer to real data)",
    "classifier_confidence": "the run's cached evaluator's top class probability (higher = more recognisable)",
}


@router.post("/interpolate", response_model=InterpolateOut)
def interpolate(body: InterpolateIn, ex: ExplorerDep) -> InterpolateOut:
    """Paths from image ``a`` to image ``b``: the cross-fade and the decoded lerp and slerp of their codes, each
    frame scored by its ELBO and its distance to the nearest training image, and by the evaluator's
    confidence when the run already has a trained evaluator (it is never trained here)."""
    pixels_a, _ = real_image(ex, body.a, "a")
    pixels_b, _ = real_image(ex, body.b, "b")
    paths = interpolation_paths(ex.model, pixels_a, pixels_b, body.steps)
    evaluator = ex.evaluator()
    generator = torch.Generator().manual_seed(ELBO_SEED)
    scores = path_realness(paths, ex.model, evaluator, ex.train.images, generator)
    out = {}
    for name in PATHS:
        s = scores[name]
        out[name] = PathOut(
            frames=[data_url(f) for f in getattr(paths, name)], elbo=floats(s.elbo),
            nearest_distance=floats(s.nearest_distance),
            classifier_confidence=None if s.classifier_confidence is None else floats(s.classifier_confidence))
    notes = {k: v for k, v in SCORE_NOTES.items() if k != "classifier_confidence" or evaluator is not None}
    return InterpolateOut(t=np.asarray(paths.t, np.float64).round(6).tolist(), paths=out, scores=notes)
