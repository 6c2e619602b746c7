"""Generated dSprites-style sprites: a white square, ellipse or heart on black, seeded, no files.

Five factors, each on a fixed grid as in dSprites: ``shape`` (square, ellipse, heart), ``scale`` (6 values
in [0.5, 1]), ``orientation`` (40 angles in [0, 2 pi)), ``pos_x`` and ``pos_y`` (32 values in [0, 1]). The
full product (3 * 6 * 40 * 32 * 32 = 737,280 images) is enumerable by flat index (mixed radix, last
factor fastest); a dataset draws random flat indices. Train and test draw from disjoint parts of that
product (a seeded 90/10 partition), each from its own random stream, so neither depends on the other's size.

A sprite is drawn in a small patch around its centre (anti-aliased signed distances) and then placed into
the frame, so the cost per image is the patch, not the whole frame.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from latentspace.data.imageset import ImageSet
from latentspace.data.render import (
    check_seed, coverage, sd_box, sd_ellipse, sd_heart, single_threaded, split_counts, split_rng, to_pixels,
)  # fmt: skip

SHAPES = ("square", "ellipse", "heart")
FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
DEFAULT_SIZES = {"train": 50_000, "test": 5_000}
TEST_FRACTION = 0.1
HALF_SIDE = 0.15  # half the side of a scale-1 square, as a fraction of the frame
ELLIPSE_AXES = (1.2, 0.6)  # semi-axes of the ellipse in half-sides
HEART_HEIGHT = 1.104  # height of render.sd_heart's unit heart
REACH = math.sqrt(2.0)  # farthest sprite point from its centre (a rotated square's corner), in half-sides
CHUNK = 256  # sprites per batch: small enough that temporaries stay in cache and off fresh pages (measured)


@dataclass(frozen=True)
class FactorGrid:
    """The grid of factor values: ``values[k]`` holds the values of factor ``names[k]`` (the shape's are indices)."""

    names: tuple[str, ...]
    values: tuple[np.ndarray, ...]

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.values)

    @property
    def total(self) -> int:
        return int(np.prod(self.sizes))

    def factors(self, indices: np.ndarray) -> np.ndarray:
        """Flat indices (N,) -> factor values (N, F) float32."""
        digits = np.unravel_index(np.asarray(indices, dtype=np.int64), self.sizes)
        return np.stack([v[d] for v, d in zip(self.values, digits)], axis=1).astype(np.float32)

    def indices(self, factors: np.ndarray) -> np.ndarray:
        """Factor values (N, F) -> flat indices (N,) int64, each value snapped to its nearest grid value."""
        factors = np.asarray(factors, dtype=np.float64)
        if factors.ndim != 2 or factors.shape[1] != len(self.names):
            raise ValueError(f"factors must be (N, {len(self.names)}) in the order {self.names}, got {factors.shape}")
        digits = [np.abs(factors[:, k, None] - v[None, :]).argmin(axis=1) for k, v in enumerate(self.values)]
        return np.ravel_multi_index(digits, self.sizes).astype(np.int64)


def shapes_factor_grid() -> FactorGrid:
    """The dSprites factor grid: sizes (3, 6, 40, 32, 32), 737,280 combinations."""
    return FactorGrid(
        names=FACTOR_NAMES,
        values=(
            np.arange(len(SHAPES), dtype=np.float64),
            np.linspace(0.5, 1.0, 6),
            np.arange(40) * (2.0 * math.pi / 40),
            np.linspace(0.0, 1.0, 32),
            np.linspace(0.0, 1.0, 32),
        ),
    )


def _check_size(size: int) -> None:
    if not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"size must be an integer number of pixels >= 16, got {size!r}")


def sprite_centres(pos: np.ndarray, size: int) -> np.ndarray:
    """Position factor in [0, 1] -> sprite centre in pixels; the centre sweeps the middle of the frame
    so that every sprite, at any scale and angle, stays inside it."""
    margin = REACH * HALF_SIDE * size + 1.0
    return margin + np.asarray(pos, dtype=np.float64) * (size - 2.0 * margin)


def _sprite_distance(shape: int, u: torch.Tensor, v: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
    """Signed distance in pixels to one kind of sprite; u, v sprite-aligned pixel offsets, half (n, 1, 1)."""
    if shape == 0:
        return sd_box(u, v, half, half)
    if shape == 1:
        return sd_ellipse(u, v, ELLIPSE_AXES[0] * half, ELLIPSE_AXES[1] * half)
    k = 2.0 * half / HEART_HEIGHT  # pixels per heart unit; the tip points down (+v) as in dSprites
    return sd_heart(u / k, (half - v) / k) * k


def _draw_patches(factors: np.ndarray, size: int, frames: torch.Tensor) -> None:
    """Draw sprites of one kind into black frames (n, size * size) uint8, each in a patch around its centre."""
    n = factors.shape[0]
    patch = min(size, math.ceil(2.0 * (REACH * HALF_SIDE * size + 2.0)))
    cx, cy = sprite_centres(factors[:, 3], size), sprite_centres(factors[:, 4], size)
    x0 = np.clip(np.floor(cx).astype(np.int64) - patch // 2, 0, size - patch)
    y0 = np.clip(np.floor(cy).astype(np.int64) - patch // 2, 0, size - patch)
    ramp = torch.arange(patch, dtype=torch.float64) + 0.5
    dx = (ramp[None, None, :] + torch.from_numpy(x0 - cx)[:, None, None]).float()
    dy = (ramp[None, :, None] + torch.from_numpy(y0 - cy)[:, None, None]).float()
    angle = torch.from_numpy(factors[:, 2]).float()[:, None, None]
    cos, sin = torch.cos(angle), torch.sin(angle)
    # sprite axes turn counter-clockwise on screen (y points down)
    u, v = cos * dx - sin * dy, sin * dx + cos * dy
    half = torch.from_numpy(factors[:, 1] * HALF_SIDE * size).float()[:, None, None]
    pixels = to_pixels(coverage(_sprite_distance(int(factors[0, 0]), u, v, half)))
    rows = torch.from_numpy(y0)[:, None, None] + torch.arange(patch)[None, :, None]
    flat = rows * size + torch.from_numpy(x0)[:, None, None] + torch.arange(patch)[None, None, :]
    frames.scatter_(1, flat.reshape(n, -1), torch.from_numpy(pixels).reshape(n, -1))


def _check_factors(factors: np.ndarray) -> None:
    """Shapes are indices; scale in (0, 1] and positions in [0, 1] keep a sprite inside its patch and frame."""
    shape, scale, angle, pos = factors[:, 0], factors[:, 1], factors[:, 2], factors[:, 3:]
    checks = (
        ("shape", shape, np.isin(shape, np.arange(len(SHAPES))), f"0, 1 or 2 ({', '.join(SHAPES)})"),
        ("scale", scale, (scale > 0) & (scale <= 1), "in (0, 1]"),
        ("orientation", angle, np.isfinite(angle), "finite (radians)"),
        ("pos_x/pos_y", pos, (pos >= 0) & (pos <= 1), "in [0, 1]"),
    )
    for name, values, ok, expected in checks:
        if not ok.all():
            raise ValueError(f"factor {name!r} must be {expected}, got {values[~ok][0]}")


def render_shapes(factors: np.ndarray, size: int = 64, channels: int = 1) -> np.ndarray:
    """Factor values (N, 5) in FACTOR_NAMES order -> uint8 sprites (N, channels, size, size), 0 or 255
    away from the anti-aliased edges. Values need not lie on the grid: any scale in (0, 1], any angle,
    any position in [0, 1]."""
    _check_size(size)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    factors = np.asarray(factors, dtype=np.float64)
    if factors.ndim != 2 or factors.shape[1] != len(FACTOR_NAMES):
        raise ValueError(f"factors must be (N, {len(FACTOR_NAMES)}) in the order {FACTOR_NAMES}, got {factors.shape}")
    _check_factors(factors)
    out = np.zeros((factors.shape[0], 1, size, size), dtype=np.uint8)
    order = np.argsort(factors[:, 0], kind="stable")  # each kind has its own distance function
    frames = torch.zeros(min(CHUNK, len(factors)), size * size, dtype=torch.uint8)  # reused: see Canvas.filled
    with single_threaded():
        for start in range(0, len(factors), CHUNK):
            rows = order[start : start + CHUNK]
            for kind in np.unique(factors[rows, 0]):
                part = rows[factors[rows, 0] == kind]
                canvas = frames[: part.size].zero_()
                _draw_patches(factors[part], size, canvas)
                out[part, 0] = canvas.numpy().reshape(-1, size, size)
    return np.repeat(out, channels, axis=1) if channels == 3 else out


def render_shapes_by_index(indices: np.ndarray, size: int = 64, channels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Flat grid indices (N,) in [0, 737280) -> (images uint8 (N, channels, size, size), factors float32 (N, 5))."""
    grid = shapes_factor_grid()
    indices = np.asarray(indices)
    if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"indices must be a 1-D integer array, got {indices.dtype} {indices.shape}")
    if indices.size and (indices.min() < 0 or indices.max() >= grid.total):
        raise ValueError(f"indices must lie in [0, {grid.total}), got [{indices.min()}, {indices.max()}]")
    factors = grid.factors(indices)
    return render_shapes(factors, size=size, channels=channels), factors


def split_indices(split: str, n: int, seed: int) -> np.ndarray:
    """n random flat indices for ``split``, drawn with replacement from that split's part of the grid."""
    total = shapes_factor_grid().total
    order = np.random.default_rng([seed, 2]).permutation(total)
    n_test = int(total * TEST_FRACTION)
    pool = order[:n_test] if split == "test" else order[n_test:]
    return pool[split_rng(seed, split).integers(0, len(pool), size=n)]


def load_shapes(
    split: str | None = None, size: int = 64, channels: int = 1, seed: int = 0, n: int | None = None
) -> ImageSet:
    """dSprites-style sprites: 50,000 train / 5,000 test by default (``n`` caps the count; with split
    None, train then test, n shared 90/10). Same seed -> identical images and factors."""
    seed = check_seed(seed)
    counts = split_counts(split, n, DEFAULT_SIZES)
    indices = np.concatenate([split_indices(s, k, seed) for s, k in counts.items()]).astype(np.int64)
    images, factors = render_shapes_by_index(indices, size=size, channels=channels)
    return ImageSet(
        images=images,
        name="shapes",
        factors=factors,
        factor_names=FACTOR_NAMES,
        factor_values={"shape": SHAPES},
        split=split,
    )
