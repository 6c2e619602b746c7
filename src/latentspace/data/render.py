"""Shared machinery of the generated datasets: anti-aliased vectorised drawing, and split bookkeeping.

Drawing: signed distance -> coverage -> paint.

Every shape is a signed distance ``d`` (negative inside, in pixels once scaled) evaluated for a whole
batch at once; a pixel's coverage is ``clip(0.5 - d, 0, 1)``, a one-pixel ramp across the edge, which
is what box-filtering a straight edge gives. Shapes combine with ``min`` (union) and ``max``
(intersection). The distances below are exact or first-order approximations: they only need to be
right within a pixel or two of the edge, where the ramp lives.

Coordinates broadcast: ``x`` varies along the image's columns only and ``y`` along its rows only (e.g.
(N, 1, W) and (N, H, 1)), so anything computed from one of them alone is a cheap 1-D array and only the
final combination is a full image.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

Scalar = float | Tensor
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights, as PIL's convert("L") uses


_THREADS = threading.Lock()
_HALF = torch.tensor(0.5)


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch on one intra-op thread for the duration, then restore the previous setting.

    Drawing is hundreds of small element-wise ops per batch: a second thread saves almost nothing but
    costs a barrier per op, and when other processes hold the cores those barriers stall for whole
    scheduler slices (measured: 10-50x slower on a busy 2-core machine). The lock keeps concurrent
    renders from restoring each other's settings.
    """
    with _THREADS:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def coverage(d_px: Tensor) -> Tensor:
    """Signed distance in pixels (negative inside) -> coverage in [0, 1]; overwrites ``d_px``."""
    return d_px.neg_().add_(0.5).clamp_(0.0, 1.0)


def sd_circle(x: Tensor, y: Tensor, r: Scalar) -> Tensor:
    """Exact distance to a circle of radius r centred at the origin."""
    return (x.square() + y.square()).sqrt_().sub_(r)


def sd_ellipse(x: Tensor, y: Tensor, a: Scalar, b: Scalar) -> Tensor:
    """Approximate distance to the ellipse (x/a)^2 + (y/b)^2 = 1 (good near the edge for mild aspect ratios)."""
    radius = torch.sqrt(a * b) if isinstance(a, Tensor) or isinstance(b, Tensor) else math.sqrt(a * b)
    return ((x / a).square() + (y / b).square()).sqrt_().sub_(1.0).mul_(radius)


def sd_box(x: Tensor, y: Tensor, half_w: Scalar, half_h: Scalar) -> Tensor:
    """Exact distance to an axis-aligned box centred at the origin (round beyond the corners)."""
    qx, qy = x.abs() - half_w, y.abs() - half_h
    outside = torch.sqrt(qx.clamp(min=0.0).square() + qy.clamp(min=0.0).square())
    return outside + torch.maximum(qx, qy).clamp_(max=0.0)


def sd_segment(x: Tensor, y: Tensor, a: tuple[float, float], b: tuple[float, float]) -> Tensor:
    """Exact distance to the segment from point a to point b (subtract a half-width for a stroke)."""
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    px, py = x - ax, y - ay
    t = ((px * dx + py * dy) / (dx * dx + dy * dy)).clamp_(0.0, 1.0)
    return torch.sqrt((px - t * dx).square() + (py - t * dy).square())


def sd_graph(y: Tensor, f: Tensor, slope: Tensor) -> Tensor:
    """Unsigned distance to the curve y = f(x) given f(x) and f'(x) on the x grid (first order)."""
    return (y - f).abs_() * torch.rsqrt(1.0 + slope.square())


def sd_heart(x: Tensor, y: Tensor) -> Tensor:
    """Exact distance to a unit heart with its tip at the origin and lobes up (+y), height ~1.10.

    Inigo Quilez's heart: two circular lobes of radius sqrt(2)/4 on a square rotated by 45 degrees.
    """
    x = x.abs()
    lobe = torch.sqrt((x - 0.25).square() + (y - 0.75).square()) - math.sqrt(2.0) / 4.0
    t = 0.5 * (x + y).clamp(min=0.0)
    top = (x.square() + (y - 1.0).square())
    diag = (x - t).square() + (y - t).square()
    body = torch.sqrt(torch.minimum(top, diag)) * torch.sign(x - y)
    return torch.where(x + y > 1.0, lobe, body)


def to_pixels(x: Tensor) -> np.ndarray:
    """float in [0, 1] -> uint8 numpy of the same shape (C order), rounded half up; overwrites ``x``."""
    return x.mul_(255.0).add_(0.5).clamp_(0.0, 255.0).numpy().astype(np.uint8, order="C")  # the cast truncates


def hsv_to_rgb(h: Tensor, s: Tensor, v: Tensor) -> Tensor:
    """(N,) hue, saturation, value in [0, 1] -> (N, 3) RGB in [0, 1]."""
    n = torch.tensor([5.0, 3.0, 1.0], dtype=h.dtype)
    k = (n[None, :] + 6.0 * h[:, None]) % 6.0
    ramp = torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)
    return v[:, None] - v[:, None] * s[:, None] * ramp


@dataclass(frozen=True)
class Region:
    """A pixel window of a Canvas with its local coordinates.

    u: (1, w, N) and v: (h, 1, N) local coordinates of the pixel centres (units); unit: (N,) pixels per
    unit, which turns a local distance into a pixel distance. Shapes drawn here are (h, w, N).
    """

    rows: slice
    cols: slice
    u: Tensor
    v: Tensor
    unit: Tensor


class Canvas:
    """A batch of N RGB images float in [0, 1], painted layer by layer (painter's algorithm).

    Each image has its own local frame: u = (x - cx) / unit, v = (y - cy) / unit, with x, y in pixels
    (y down), so a drawing is written once in units and lands wherever and however large each image's
    frame puts it. Layers draw only inside the window their shape can reach, not the whole image.

    The pixels are stored (3, S, S, N), image index last: a window of the batch is then a few long
    contiguous runs, which the element-wise kernels stream through several times faster than the
    short rows of an (N, 3, S, S) window, and (N, 3, S, S) is one 2-D transpose away.
    """

    def __init__(self, rgb: Tensor, cx: Tensor, cy: Tensor, unit: Tensor):
        self.rgb, self.cx, self.cy, self.unit = rgb, cx, cy, unit
        self.size = rgb.shape[1]
        self._centres = torch.arange(self.size, dtype=torch.float32) + 0.5
        # conservative bounds of every image's frame, so a window costs no tensor reductions
        self._x = (cx.min().item(), cx.max().item())
        self._y = (cy.min().item(), cy.max().item())
        self._unit = (unit.min().item(), unit.max().item())

    @staticmethod
    def filled(background: Tensor, cx: Tensor, cy: Tensor, unit: Tensor, out: Tensor) -> "Canvas":
        """Images of one flat colour each, painted in ``out`` (3, S, S, N) float32: background (3, N);
        frames cx, cy, unit (N,) in pixels. Reusing one ``out`` for batch after batch saves first-touch
        page faults, which cost more than the painting on some virtual machines."""
        return Canvas(out.copy_(background[:, None, None].expand_as(out)), cx, cy, unit)

    def part(self, images: slice) -> "Canvas":
        """The same canvas restricted to a run of images; painting it paints them."""
        return Canvas(self.rgb[..., images], self.cx[images], self.cy[images], self.unit[images])

    def _span(self, centre: tuple[float, float], lo: float, hi: float) -> slice:
        first = math.floor(centre[0] + min(lo * self._unit[0], lo * self._unit[1])) - 1
        last = math.ceil(centre[1] + max(hi * self._unit[0], hi * self._unit[1])) + 1
        return slice(min(max(first, 0), self.size), min(max(last, 0), self.size))

    def region(self, u0: float, u1: float, v0: float, v1: float) -> Region:
        """The window holding the local box [u0, u1] x [v0, v1] of every image in the batch."""
        rows, cols = self._span(self._y, v0, v1), self._span(self._x, u0, u1)
        u = (self._centres[cols][None, :, None] - self.cx) / self.unit
        v = (self._centres[rows][:, None, None] - self.cy) / self.unit
        return Region(rows, cols, u, v, self.unit)

    def paint(self, region: Region, d: Tensor, color: Tensor, opacity: float = 1.0) -> None:
        """Blend ``color`` over the window by the coverage of the shape with local signed distance ``d``.

        d: broadcastable to (h, w, N), in units. color: (3, N), or (3, h, 1, N) for per-row shading.
        """
        if d.numel() == 0:
            return
        alpha = torch.addcmul(_HALF, d, region.unit, value=-1.0).clamp_(0.0, 1.0)  # coverage(d * unit), one pass
        if opacity != 1.0:
            alpha = alpha.mul_(opacity)
        if color.dim() == 2:
            color = color[:, None, None]
        self.rgb[:, region.rows, region.cols].lerp_(color, alpha)

    def pixels(self, out: np.ndarray) -> None:
        """Write the images into ``out``: uint8 (N, C, S, S), C = 3 or 1 (the BT.601 grey). Ends the canvas."""
        rgb = self.rgb
        if out.shape[1] == 1:
            rgb = (rgb * torch.tensor(LUMA, dtype=rgb.dtype)[:, None, None, None]).sum(dim=0, keepdim=True)
        n = rgb.shape[-1]
        scaled = rgb.mul_(255.0).add_(0.5).clamp_(0.0, 255.0).reshape(-1, n).numpy()
        np.copyto(out.reshape(n, -1), scaled.T, casting="unsafe")  # the cast truncates: rounds half up


# Split bookkeeping shared by the generated datasets.
SPLIT_STREAMS = {"train": 0, "test": 1}


def check_seed(seed: int) -> int:
    """A valid dataset seed (a non-negative integer), as int."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def split_rng(seed: int, split: str) -> np.random.Generator:
    """The random stream of one split: train and test never share draws, whatever their sizes."""
    return np.random.default_rng([seed, SPLIT_STREAMS[split]])


def split_counts(split: str | None, n: int | None, defaults: dict[str, int]) -> dict[str, int]:
    """Images per split: the defaults, or n (shared 90/10 between train and test when split is None)."""
    if split not in (None, "train", "test"):
        raise ValueError(f"split must be None, 'train' or 'test', got {split!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0):
        raise ValueError(f"n must be a non-negative integer number of images, got {n!r}")
    if split is not None:
        return {split: defaults[split] if n is None else int(n)}
    if n is None:
        return {"train": defaults["train"], "test": defaults["test"]}
    return {"train": int(n) - int(n) // 10, "test": int(n) // 10}


def runs(flags: np.ndarray) -> list[slice]:
    """The maximal runs of True in a 1-D boolean array, as slices."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    return [slice(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]
