"""Throughput of the generated datasets, each against a naive baseline timed in the same run.

    python benchmarks/data_throughput.py [--repeats 5]

faces: load_faces (64x64 RGB) vs. a per-image PIL ImageDraw renderer of the same layers (drawn at 4x and
box-filtered down, the usual way to anti-alias with ImageDraw). shapes: load_shapes (64x64) vs. the same
renderer called one image at a time. Every figure is the best of the repeats: the machine is shared, and
the best run is the one least disturbed by other work.
"""
from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from latentspace.data import faces as F
from latentspace.data.faces import face_layout, load_faces, sample_face_factors
from latentspace.data.shapes import load_shapes, render_shapes, shapes_factor_grid

SIZE = 64
SUPER = 4  # supersampling of the PIL baseline


def best_rate(work: Callable[[], object], count: int, repeats: int) -> tuple[float, float]:
    """(wall-clock, CPU-time) items per second of the fastest of ``repeats`` runs of ``work``, which makes
    ``count`` items. CPU time leaves out the waits for a core that other processes hold."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        work()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return count / min(wall), count / min(cpu)


def _pil_face(row: np.ndarray) -> np.ndarray:
    """One face drawn with ImageDraw primitives (the same layers and colours, without the chin taper)."""
    col = {name: row[k] for k, name in enumerate(F.FACTOR_NAMES)}
    lay = face_layout(row[None], SIZE * SUPER)
    cx, cy, unit = lay.centre_x[0], lay.centre_y[0], lay.unit[0]
    hair, skin = F.HAIR_RGB[int(col["hair_color"])], F.SKIN_RGB[int(col["skin_tone"])]
    shade = lambda rgb, k: tuple(int(c * k) for c in rgb)  # noqa: E731
    hue = 0.42 + 0.33 * col["background"]
    hsv = (int(hue * 255), int(0.28 * 255), int(0.93 * 255))
    bg = Image.new("HSV", (1, 1), hsv).convert("RGB").getpixel((0, 0))
    img = Image.new("RGB", (SIZE * SUPER, SIZE * SUPER), bg)
    d = ImageDraw.Draw(img)
    p = lambda u, v: (cx + u * unit, cy + v * unit)  # noqa: E731

    def ellipse(u, v, a, b, fill, outline=None, width=0):
        d.ellipse([p(u - a, v - b), p(u + a, v + b)], fill=fill, outline=outline, width=width)

    ellipse(0, F.HAIR_Y, F.HAIR_A, F.HAIR_B, hair)
    if col["hair_length"] == 1:
        d.rectangle([p(-1.2, -0.2), p(1.2, 2.6)], fill=hair)
    else:
        d.rectangle([p(-1.2, F.SHORT_HAIR_END), p(1.2, 2.6)], fill=bg)
    d.rectangle([p(-0.36, 0.8), p(0.36, 2.2)], fill=shade(skin, 0.84))
    ellipse(0, 2.55, 1.85, 0.85, F.SHIRT_RGB)
    for s in (-1, 1):
        ellipse(s * F.EAR_X, F.EAR_Y, F.EAR_A, F.EAR_B, shade(skin, 0.92))
    ellipse(0, 0, F.FACE_A, F.FACE_B, skin)
    for s in (-1, 1):
        ellipse(s * F.EYE_X, F.EYE_Y, 0.2, 0.125, F.WHITE_RGB)
        ellipse(s * F.EYE_X, F.EYE_Y, 0.1, 0.1, F.EYE_RGB[int(col["eye_color"])])
        ellipse(s * F.EYE_X, F.EYE_Y, 0.045, 0.045, F.PUPIL_RGB)
        brow = [p(s * F.EYE_X - 0.2, -0.42), p(s * F.EYE_X + 0.2, -0.2)]
        d.arc(brow, 200, 340, fill=shade(hair, 0.8), width=int(0.09 * unit))
    ellipse(0, F.NOSE_Y, 0.11, 0.075, shade(skin, 0.75))
    xs = np.linspace(-1.0, 1.0, 12)
    curve = [p(x * F.MOUTH_HALF_W, F.MOUTH_Y - 0.14 * col["smile"] * (x * x - 0.5)) for x in xs]
    d.line(curve, fill=F.LIPS_RGB, width=int(0.09 * unit))
    if col["mask_on"] == 1:
        t = np.linspace(0.05, np.pi - 0.05, 24)
        d.polygon([p(1.04 * np.cos(a), 1.29 * np.sin(a)) for a in t] + [p(-1.0, 0.2), p(1.0, 0.2)], fill=F.MASK_RGB)
        for v in (0.45, 0.65, 0.85):
            d.line([p(-0.8, v), p(0.8, v)], fill=shade(F.MASK_RGB, 0.82), width=int(0.044 * unit))
        for s in (-1, 1):
            d.line([p(s * 0.93, 0.2), p(s * 1.03, -0.14)], fill=F.STRAP_RGB, width=int(0.06 * unit))
            d.line([p(s * 0.82, 0.72), p(s * 1.03, 0.3)], fill=F.STRAP_RGB, width=int(0.06 * unit))
    if col["glasses"] == 1:
        for s in (-1, 1):
            ellipse(s * F.EYE_X, F.EYE_Y, F.GLASS_R, F.GLASS_R, None, F.FRAME_RGB, int(0.09 * unit))
            d.line([p(s * 0.62, -0.06), p(s * 1.02, -0.06)], fill=F.FRAME_RGB, width=int(0.07 * unit))
        d.line([p(-0.12, -0.06), p(0.12, -0.06)], fill=F.FRAME_RGB, width=int(0.07 * unit))
    t = np.linspace(np.pi, 2 * np.pi, 32)
    top = [p(F.HAIR_A * np.cos(a), F.HAIR_Y + F.HAIR_B * np.sin(a)) for a in t]
    fringe = [p(x, -0.62 + 0.2 * (x + 0.25) ** 2) for x in np.linspace(F.HAIR_A, -F.HAIR_A, 16)]
    d.polygon(top + fringe, fill=hair)
    return np.asarray(img.resize((SIZE, SIZE), Image.BOX)).transpose(2, 0, 1)


def pil_faces(factors: np.ndarray) -> np.ndarray:
    return np.stack([_pil_face(row) for row in factors])


def shapes_one_at_a_time(factors: np.ndarray) -> np.ndarray:
    return np.concatenate([render_shapes(factors[k : k + 1], size=SIZE) for k in range(len(factors))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n_faces, n_shapes, n_base = 5000, 20000, 300

    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    load_faces(split="train", n=64)  # warm-up: imports, allocator
    faces, faces_cpu = best_rate(lambda: load_faces(split="train", n=n_faces), n_faces, args.repeats)
    rows = sample_face_factors(n_base, np.random.default_rng(0))
    faces_base, _ = best_rate(lambda: pil_faces(rows), n_base, max(2, args.repeats // 2))
    print(f"faces/s: {faces:,.0f} (target >= 5000)  [{n_faces} faces 64x64 RGB, best of {args.repeats}]")
    print(f"  by CPU time: {faces_cpu:,.0f} faces/s")
    print(f"  baseline, per-image PIL ImageDraw at {SUPER}x + box filter: {faces_base:,.0f} faces/s")
    print(f"  ratio faces/s vs baseline: {faces / faces_base:.1f}x")

    shapes, shapes_cpu = best_rate(lambda: load_shapes(split="train", n=n_shapes), n_shapes, args.repeats)
    grid = shapes_factor_grid()
    one = grid.factors(np.random.default_rng(0).integers(0, grid.total, n_base))
    shapes_base, _ = best_rate(lambda: shapes_one_at_a_time(one), n_base, max(2, args.repeats // 2))
    print(f"shapes/s: {shapes:,.0f} (target >= 20000)  [{n_shapes} sprites 64x64, best of {args.repeats}]")
    print(f"  by CPU time: {shapes_cpu:,.0f} shapes/s")
    print(f"  baseline, the same renderer one image at a time: {shapes_base:,.0f} shapes/s")
    print(f"  ratio shapes/s vs baseline: {shapes / shapes_base:.1f}x")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
