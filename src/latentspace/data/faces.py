"""Generated cartoon portraits, the default dataset: seeded, no files, every factor known.

Each face is drawn from its factor row alone, as a sequence of anti-aliased layers over the whole batch
(background, hair back, shoulders, ears, face, eyes, brows, nose, mouth, mask, glasses, hair front). Shapes
are written in face units: u, v = (x - centre_x, y - centre_y) / unit with y down and unit = a quarter of
the frame times ``head_size``, so the face is 2 units wide and 2.5 units tall whatever the image size.

Factors (columns of ``ImageSet.factors`` in FACTOR_NAMES order), every one sampled independently and
uniformly: discrete ``hair_color``, ``hair_length``, ``eye_color``, ``skin_tone``, ``mask_on``,
``glasses`` (the column holds the value index); continuous ``smile`` in [-1, 1] (frown -> smile) and the
nuisance jitter ``head_size`` in [0.9, 1.1], ``head_x`` and ``head_y`` in [-0.04, 0.04] (fractions of
the frame) and ``background`` in [0, 1] (background hue, mint -> lavender).
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

from latentspace.data.imageset import ImageSet
from latentspace.data.render import (
    Canvas, Region, check_seed, hsv_to_rgb, runs, sd_box, sd_circle, sd_ellipse, sd_graph, sd_segment,
    single_threaded, split_counts, split_rng,
)  # fmt: skip

FACTOR_NAMES = (
    "hair_color", "hair_length", "eye_color", "skin_tone", "smile", "mask_on", "glasses",
    "head_size", "head_x", "head_y", "background",
)  # fmt: skip
FACTOR_VALUES = {
    "hair_color": ("black", "brown", "blond", "red", "grey"),
    "hair_length": ("short", "long"),
    "eye_color": ("brown", "blue", "green"),
    "skin_tone": ("light", "medium", "tan", "brown", "dark"),
    "mask_on": ("no", "yes"),
    "glasses": ("no", "yes"),
}
CONTINUOUS_RANGES = {
    "smile": (-1.0, 1.0),
    "head_size": (0.9, 1.1),
    "head_x": (-0.04, 0.04),
    "head_y": (-0.04, 0.04),
    "background": (0.0, 1.0),
}
DEFAULT_SIZES = {"train": 20_000, "test": 2_000}
CHUNK = 128  # faces per batch at 64 px (scaled by area for other sizes); measured best
MAX_RENDER_THREADS = 4

# Colours, RGB 0-255, indexed like FACTOR_VALUES.
HAIR_RGB = ((32, 28, 30), (110, 66, 34), (236, 200, 110), (196, 66, 24), (172, 172, 178))
EYE_RGB = ((105, 62, 28), (45, 120, 215), (40, 150, 60))
SKIN_RGB = ((252, 224, 200), (232, 186, 146), (196, 142, 98), (146, 98, 64), (96, 62, 44))
SHIRT_RGB = (64, 76, 100)
MASK_RGB = (184, 222, 244)
STRAP_RGB = (246, 248, 252)
FRAME_RGB = (28, 28, 34)
LENS_RGB = (70, 84, 110)
LIPS_RGB = (150, 48, 58)
WHITE_RGB = (248, 248, 248)
PUPIL_RGB = (18, 16, 20)

# Geometry in face units (see the module docstring); the face is an ellipse narrowing toward the chin.
CENTRE_Y = 0.46  # head centre, fraction of the frame from the top
UNIT = 0.25  # one face unit at head_size 1, fraction of the frame
FACE_A, FACE_B, CHIN_TAPER = 1.0, 1.25, 0.16
HAIR_Y, HAIR_A, HAIR_B = -0.15, 1.17, 1.33
EYE_X, EYE_Y = 0.37, -0.02
EAR_X, EAR_Y, EAR_A, EAR_B = 1.0, 0.05, 0.2, 0.3
NOSE_Y, MOUTH_Y, MOUTH_HALF_W = 0.33, 0.7, 0.3
SHORT_HAIR_END = 0.05  # short hair stops at the ears; long hair falls to the shoulders
GLASS_R = 0.25


@dataclass(frozen=True)
class FaceLayout:
    """Where a face's parts land, in pixels (x right, y down), each (N,) float64.

    Tests and attribute-editing code use it to look at a part: the eye line, the mouth, the face box.
    """

    centre_x: np.ndarray
    centre_y: np.ndarray
    unit: np.ndarray  # pixels per face unit
    eye_y: np.ndarray
    mouth_y: np.ndarray
    ear_bottom_y: np.ndarray
    face_left: np.ndarray
    face_right: np.ndarray
    face_top: np.ndarray
    face_bottom: np.ndarray


def face_layout(factors: np.ndarray, size: int = 64) -> FaceLayout:
    """The layout of faces drawn from ``factors`` (N, F) at ``size`` pixels."""
    f = _check_factors(factors)
    col = {name: f[:, k].astype(np.float64) for k, name in enumerate(FACTOR_NAMES)}
    cx, cy = size * (0.5 + col["head_x"]), size * (CENTRE_Y + col["head_y"])
    unit = size * UNIT * col["head_size"]
    return FaceLayout(
        centre_x=cx, centre_y=cy, unit=unit, eye_y=cy + EYE_Y * unit, mouth_y=cy + MOUTH_Y * unit,
        ear_bottom_y=cy + (EAR_Y + EAR_B) * unit, face_left=cx - FACE_A * unit, face_right=cx + FACE_A * unit,
        face_top=cy - FACE_B * unit, face_bottom=cy + FACE_B * unit,
    )  # fmt: skip


def sample_face_factors(n: int, rng: np.random.Generator) -> np.ndarray:
    """n independent uniform factor rows (n, F) float32 in FACTOR_NAMES order.

    One uniform row per face, mapped column by column, so the first k rows do not depend on n.
    """
    draws = rng.random((n, len(FACTOR_NAMES)))
    out = np.empty_like(draws, dtype=np.float32)
    for k, name in enumerate(FACTOR_NAMES):
        if name in FACTOR_VALUES:
            out[:, k] = np.floor(draws[:, k] * len(FACTOR_VALUES[name]))
        else:
            lo, hi = CONTINUOUS_RANGES[name]
            out[:, k] = lo + draws[:, k] * (hi - lo)
    return out


def _check_factors(factors: np.ndarray) -> np.ndarray:
    """Factor rows as float32 (N, F); discrete values must be indices, continuous ones may leave their
    sampling range by up to half its width (extrapolated edits), not more: the drawing windows assume it."""
    f = np.asarray(factors, dtype=np.float32)
    if f.ndim != 2 or f.shape[1] != len(FACTOR_NAMES):
        raise ValueError(f"factors must be (N, {len(FACTOR_NAMES)}) in the order {FACTOR_NAMES}, got {f.shape}")
    for name, values in FACTOR_VALUES.items():
        column = f[:, FACTOR_NAMES.index(name)]
        bad = column[~np.isin(column, np.arange(len(values)))]
        if bad.size:
            allowed = f"an index 0..{len(values) - 1} ({', '.join(values)})"
            raise ValueError(f"factor {name!r} must hold {allowed}, got {bad[0]}")
    for name, (lo, hi) in CONTINUOUS_RANGES.items():
        column = f[:, FACTOR_NAMES.index(name)]
        slack = 0.5 * (hi - lo)
        outside = ~((column >= lo - slack) & (column <= hi + slack))  # NaN is outside too
        if outside.any():
            raise ValueError(f"factor {name!r} must lie in [{lo - slack:g}, {hi + slack:g}], got {column[outside][0]}")
    return f


@dataclass(frozen=True)
class _Look:
    """One batch's colours (3, N) in [0, 1] and smiles (N,), read from the factor rows (N, F)."""

    hair: Tensor
    eyes: Tensor
    skin: Tensor
    background: Tensor
    smile: Tensor

    def part(self, images: slice) -> "_Look":
        return _Look(**{f.name: getattr(self, f.name)[..., images] for f in fields(self)})

    @staticmethod
    def of(f: Tensor) -> "_Look":
        def pick(table: tuple, name: str) -> Tensor:
            return _rgb(table)[f[:, FACTOR_NAMES.index(name)].long()].T.contiguous()

        hue = 0.42 + 0.33 * f[:, FACTOR_NAMES.index("background")]  # mint -> sky -> lavender
        background = hsv_to_rgb(hue, torch.full_like(hue, 0.28), torch.full_like(hue, 0.93))
        return _Look(
            hair=pick(HAIR_RGB, "hair_color"), eyes=pick(EYE_RGB, "eye_color"), skin=pick(SKIN_RGB, "skin_tone"),
            background=background.T.contiguous(), smile=f[:, FACTOR_NAMES.index("smile")],
        )  # fmt: skip


def _rgb(table: tuple) -> Tensor:
    return torch.tensor(table, dtype=torch.float32) / 255.0


def _fixed(rgb: tuple, like: Tensor) -> Tensor:
    """One colour for every image, shaped like ``like`` (3, N)."""
    return _rgb(rgb)[:, None].expand_as(like)


def _mirrored(canvas: Canvas, u0: float, u1: float, v0: float, v1: float) -> tuple[Region, Region]:
    """The windows of the box [u0, u1] x [v0, v1] and of its mirror image; draw in them with |u|."""
    return canvas.region(-u1, -u0, v0, v1), canvas.region(u0, u1, v0, v1)


def _face_distance(r: Region, grow: float = 0.0) -> Tensor:
    """The face: an ellipse whose width narrows toward the chin (as sd_ellipse, with a per-row width)."""
    width = FACE_A * (1.0 - CHIN_TAPER / FACE_B * r.v.clamp(min=0.0)) + grow
    height = FACE_B + grow
    k = torch.addcmul((r.v / height).square(), r.u.square(), width.reciprocal().square())
    return k.sqrt_().sub_(1.0).mul_((width * height).sqrt())


def _hair_distance(r: Region) -> Tensor:
    return sd_ellipse(r.u, r.v - HAIR_Y, HAIR_A, HAIR_B)


# Layers, back to front.


def _hair_back(c: Canvas, look: _Look) -> None:
    r = c.region(-HAIR_A, HAIR_A, HAIR_Y - HAIR_B, SHORT_HAIR_END)
    c.paint(r, torch.maximum(_hair_distance(r), r.v - SHORT_HAIR_END), look.hair)


def _long_hair(c: Canvas, look: _Look) -> None:
    r = c.region(-1.2, 1.2, 0.0, 2.6)
    c.paint(r, torch.maximum(r.u.abs() - 1.2, -r.v), look.hair)  # to the frame's bottom, behind the shoulders


def _shoulders(c: Canvas, look: _Look) -> None:
    """The neck (skin in shadow) and the shirt's shoulders."""
    r = c.region(-0.4, 0.4, 0.8, 2.2)
    c.paint(r, torch.maximum(r.u.abs() - 0.36, 0.8 - r.v), look.skin * 0.84)  # the neck, down into the shirt
    r = c.region(-1.9, 1.9, 1.65, 3.4)
    c.paint(r, sd_ellipse(r.u, r.v - 2.55, 1.85, 0.85), _fixed(SHIRT_RGB, look.skin))


def _ears(c: Canvas, look: _Look) -> None:
    for r in _mirrored(c, EAR_X - EAR_A, EAR_X + EAR_A, EAR_Y - EAR_B, EAR_Y + EAR_B):
        c.paint(r, sd_ellipse(r.u.abs() - EAR_X, r.v - EAR_Y, EAR_A, EAR_B), look.skin * 0.92)


def _face(c: Canvas, look: _Look) -> None:
    r = c.region(-FACE_A, FACE_A, -FACE_B, FACE_B)
    c.paint(r, _face_distance(r), look.skin)


def _eyes(c: Canvas, look: _Look) -> None:
    r = c.region(-EYE_X - 0.23, EYE_X + 0.23, EYE_Y - 0.16, EYE_Y + 0.16)
    x, y = r.u.abs() - EYE_X, r.v - EYE_Y
    sclera = sd_ellipse(x, y, 0.2, 0.125)
    c.paint(r, sclera, _fixed(WHITE_RGB, look.eyes))
    c.paint(r, torch.maximum(sd_circle(x, y, 0.1), sclera), look.eyes)
    c.paint(r, sd_circle(x, y, 0.045), _fixed(PUPIL_RGB, look.eyes))
    c.paint(r, torch.maximum(sclera.abs() - 0.025, y), look.skin * 0.45)  # upper lid line


def _brows(c: Canvas, look: _Look) -> None:
    r = c.region(-EYE_X - 0.22, EYE_X + 0.22, -0.45, -0.22)
    x = r.u.abs() - EYE_X
    arch = -0.31 - 0.05 * (1.0 - (x / 0.2).square())
    d = torch.maximum(sd_graph(r.v, arch, 2.5 * x) - 0.045, x.abs() - 0.2)
    c.paint(r, d, look.hair * 0.8)


def _nose(c: Canvas, look: _Look) -> None:
    r = c.region(-0.15, 0.15, NOSE_Y - 0.1, NOSE_Y + 0.1)
    c.paint(r, sd_ellipse(r.u, r.v - NOSE_Y, 0.11, 0.075), look.skin * 0.75)


def _mouth(c: Canvas, look: _Look) -> None:
    r = c.region(-MOUTH_HALF_W - 0.05, MOUTH_HALF_W + 0.05, MOUTH_Y - 0.25, MOUTH_Y + 0.25)
    bend = 0.14 * look.smile  # smile > 0 lifts the corners (y points down)
    x = r.u / MOUTH_HALF_W
    curve = MOUTH_Y - bend * (x.square() - 0.5)
    thickness = 0.04 + 0.015 * look.smile.abs()
    d = torch.maximum(sd_graph(r.v, curve, -2.0 * bend * x / MOUTH_HALF_W) - thickness, r.u.abs() - MOUTH_HALF_W)
    c.paint(r, d, _fixed(LIPS_RGB, look.skin))


def _mask(c: Canvas, look: _Look) -> None:
    r = c.region(-FACE_A - 0.05, FACE_A + 0.05, 0.12, FACE_B + 0.05)
    face = _face_distance(r, grow=0.04)
    top = 0.14 + 0.06 * r.u.square()
    c.paint(r, torch.maximum(face, top - r.v), _fixed(MASK_RGB, look.skin))
    r = c.region(-FACE_A, FACE_A, 0.4, 0.9)
    pleat = (r.v - 0.45 - 0.2 * ((r.v - 0.45) / 0.2).round().clamp(0.0, 2.0)).abs()  # lines at 0.45, 0.65, 0.85
    # each pleat spans the face's width at its height, less a margin (a function of v alone: cheap)
    face_width = FACE_A * (1.0 - CHIN_TAPER / FACE_B * r.v) * (1.0 - (r.v / FACE_B).square()).clamp(min=0.0).sqrt()
    c.paint(r, torch.maximum(r.u.abs() - (face_width - 0.15), pleat - 0.022), _fixed(MASK_RGB, look.skin) * 0.82)
    for r in _mirrored(c, 0.78, 1.07, -0.18, 0.76):  # ear loops, from the mask's corners over the ears
        x = r.u.abs()
        upper, lower = sd_segment(x, r.v, (0.93, 0.2), (1.03, -0.14)), sd_segment(x, r.v, (0.82, 0.72), (1.03, 0.3))
        c.paint(r, torch.minimum(upper, lower) - 0.03, _fixed(STRAP_RGB, look.skin))


def _glasses(c: Canvas, look: _Look) -> None:
    r = c.region(-1.02, 1.02, EYE_Y - GLASS_R - 0.06, EYE_Y + GLASS_R + 0.06)
    x, y = r.u.abs() - EYE_X, r.v - EYE_Y
    lens = sd_circle(x, y, GLASS_R)
    c.paint(r, lens, _fixed(LENS_RGB, look.skin), opacity=0.25)
    bridge = sd_box(r.u, y + 0.04, EYE_X - GLASS_R + 0.02, 0.035)
    temple = sd_box(r.u.abs() - 0.82, y + 0.04, 0.2, 0.035)
    frame = torch.minimum(lens.abs() - 0.045, torch.minimum(bridge, temple))
    c.paint(r, frame, _fixed(FRAME_RGB, look.skin))


def _hair_front(c: Canvas, look: _Look) -> None:
    r = c.region(-HAIR_A, HAIR_A, HAIR_Y - HAIR_B, -0.1)
    x = r.u + 0.25  # a side-swept fringe: the hairline is highest left of centre
    hairline = -0.62 + 0.2 * x.square()
    d = (r.v - hairline) * torch.rsqrt(1.0 + (0.4 * x).square())
    c.paint(r, torch.maximum(_hair_distance(r), d), look.hair)


# (layer, the yes/no factor that switches it on or None), painted in this order.
LAYERS = (
    (_hair_back, None), (_long_hair, "hair_length"), (_shoulders, None), (_ears, None), (_face, None),
    (_eyes, None), (_brows, None), (_nose, None), (_mouth, None), (_mask, "mask_on"), (_glasses, "glasses"),
    (_hair_front, None),
)  # fmt: skip
SWITCHES = ("mask_on", "glasses", "hair_length")


def _switch_order(f: np.ndarray) -> np.ndarray:
    """A stable order of the rows in which faces with a mask, and faces with glasses, are contiguous
    (Gray-code order of the switches), so a switched layer paints a few runs of a chunk, not all of it."""
    bits = [f[:, FACTOR_NAMES.index(name)].astype(np.int64) for name in SWITCHES]
    rank = bits[0] * 4 + (bits[0] ^ bits[1]) * 2 + (bits[0] ^ bits[1] ^ bits[2])
    return np.argsort(rank, kind="stable")


def _render_chunk(f: Tensor, rgb: Tensor, out: np.ndarray) -> None:
    """Draw the faces of factor rows f (n, F) into out (n, C, S, S), painting in rgb (3, S, S, n)."""
    size = rgb.shape[1]
    look = _Look.of(f)
    cx = size * (0.5 + f[:, FACTOR_NAMES.index("head_x")])
    cy = size * (CENTRE_Y + f[:, FACTOR_NAMES.index("head_y")])
    unit = size * UNIT * f[:, FACTOR_NAMES.index("head_size")]
    canvas = Canvas.filled(look.background, cx, cy, unit, out=rgb)
    for layer, switch in LAYERS:
        if switch is None:
            layer(canvas, look)
            continue
        for images in runs(f[:, FACTOR_NAMES.index(switch)].numpy() == 1):
            layer(canvas.part(images), look.part(images))
    canvas.pixels(out)


def render_faces(factors: np.ndarray, size: int = 64, channels: int = 3) -> np.ndarray:
    """Factor rows (N, F) in FACTOR_NAMES order -> uint8 faces (N, channels, size, size).

    Discrete columns hold value indices; continuous ones may go a little outside their sampling range.
    """
    f = _check_factors(factors)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"size must be an integer number of pixels >= 16, got {size!r}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    out = np.empty((len(f), channels, size, size), dtype=np.uint8)
    order = _switch_order(f)
    chunk = max(16, CHUNK * 64 * 64 // (size * size))
    batches = [order[start : start + chunk] for start in range(0, len(f), chunk)]
    # Batches on as many Python threads as torch may use cores (the thread plan's count), each op on one: torch
    # lets go of the GIL inside its ops, so 2 cores draw 20,000 faces at 64 px in 1.24 s against 1.90.
    workers = max(1, min(torch.get_num_threads(), len(batches), MAX_RENDER_THREADS))
    local = threading.local()

    def draw(rows: np.ndarray) -> None:
        if not hasattr(local, "rgb"):  # one canvas per thread, reused by each of its batches
            local.rgb = torch.empty(3, size, size, min(chunk, len(f)))
            local.pixels = np.empty((min(chunk, len(f)), channels, size, size), dtype=np.uint8)
        _render_chunk(torch.from_numpy(f[rows]), local.rgb[..., : len(rows)], local.pixels[: len(rows)])
        out[rows] = local.pixels[: len(rows)]

    with single_threaded():
        if workers == 1:
            for rows in batches:
                draw(rows)
        else:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(draw, batches))
    return out


def load_faces(
    split: str | None = None, size: int = 64, channels: int = 3, seed: int = 0, n: int | None = None
) -> ImageSet:
    """Cartoon faces: 20,000 train / 2,000 test by default (``n`` caps the count; with split None,
    train then test, n shared 90/10). Same seed -> identical images and factors."""
    seed = check_seed(seed)
    counts = split_counts(split, n, DEFAULT_SIZES)
    factors = np.concatenate(
        [sample_face_factors(k, split_rng(seed, s)) for s, k in counts.items()]
    ).astype(np.float32)
    return ImageSet(
        images=render_faces(factors, size=size, channels=channels),
        name="faces",
        factors=factors,
        factor_names=FACTOR_NAMES,
        factor_values=dict(FACTOR_VALUES),
        split=split,
    )
