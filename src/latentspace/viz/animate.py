"""Animations as GIFs: the codes moving during training, and an interpolation played frame by frame."""
from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from latentspace.latent.evolution import EvolutionResult
from latentspace.latent.interpolate import InterpolationPaths
from latentspace.metrics.realness import PATHS
from latentspace.utils.files import write_bytes
from latentspace.viz.figures import titled
from latentspace.viz.grid import image_grid
from latentspace.viz.plots import FIGSIZE, data_limits, scatter_codes

DURATION_MS = 500
MAX_FRAMES = 30  # a 60-epoch run drew 60 matplotlib frames (10 s) and an 0.8 MB GIF; 30 evenly spaced tell the same


def gif_bytes(frames: Sequence[Image.Image], duration_ms: int = DURATION_MS, loop: int = 0) -> bytes:
    """``frames`` (PIL images of one size) as an animated GIF file's bytes; loop 0 repeats forever."""
    if not frames:
        raise ValueError("an animation needs at least one frame, got none")
    sizes = {f.size for f in frames}
    if len(sizes) != 1:
        raise ValueError(f"frames must share one size, got {sorted(sizes)}")
    if duration_ms < 1:
        raise ValueError(f"duration_ms must be >= 1, got {duration_ms}")
    first, *rest = [f.convert("RGB") for f in frames]
    buf = io.BytesIO()
    first.save(buf, format="GIF", save_all=True, append_images=rest, duration=duration_ms, loop=loop)
    return buf.getvalue()


def save_gif(frames: Sequence[Image.Image], path: str | os.PathLike, duration_ms: int = DURATION_MS,
             loop: int = 0) -> Path:
    """Write ``frames`` (PIL images of one size) as an animated GIF atomically; loop 0 repeats forever."""
    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"{path}: an animation is written as .gif, got suffix {path.suffix!r}")
    try:
        data = gif_bytes(frames, duration_ms, loop)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    return write_bytes(path, data)


def evolution_limits(result: EvolutionResult) -> tuple[float, float, float, float]:
    """(xmin, xmax, ymin, ymax) holding every epoch's points: the one frame of reference for all frames."""
    return data_limits(result.xy)


def _epoch_title(epoch: int, elbo: float) -> str:
    return f"epoch {epoch}, initial weights" if math.isnan(elbo) else f"epoch {epoch}, test ELBO {elbo:.1f}"


def frame_indices(n: int, max_frames: int | None = MAX_FRAMES) -> np.ndarray:
    """At most ``max_frames`` (None: all) evenly spaced indices of n epochs, the first and the last always in."""
    if max_frames is not None and max_frames < 2:
        raise ValueError(f"max_frames must be at least 2 (the first and the last epoch), got {max_frames}")
    if max_frames is None or n <= max_frames:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_frames)).astype(np.int64))


def evolution_frames(result: EvolutionResult, figsize: tuple[float, float] = FIGSIZE,
                     max_frames: int | None = MAX_FRAMES) -> list[Image.Image]:
    """A scatter of the probe codes per epoch (at most ``max_frames``, evenly spaced; None: every epoch), all
    with the same axis limits, titled 'epoch N, test ELBO x'."""
    limits = evolution_limits(result)
    return [
        scatter_codes(result.xy[i], result.labels, result.class_names,
                      _epoch_title(result.epochs[i], result.test_elbo[i]), limits=limits, figsize=figsize)
        for i in frame_indices(len(result.epochs), max_frames)
    ]


def interpolation_frames(paths: InterpolationPaths) -> list[Image.Image]:
    """A frame per t with the pixel, lerp and slerp images side by side, captioned, titled 't = 0.33'."""
    images = np.stack([getattr(paths, name) for name in PATHS], axis=1)  # (T, 3, C, H, W)
    return [titled(image_grid(images[i], ncols=len(PATHS), captions=PATHS), f"t = {t:.2f}")
            for i, t in enumerate(paths.t)]
