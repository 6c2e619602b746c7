"""`latentspace space`: how many images of a shape exist, why it is not H*W*C*levels, and how small a latent
grid and a dataset are next to that number."""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated

import typer

from latentspace.latent.space import (
    SpaceCount, count_space, coverage_log10, enumerate_space, latent_grid_points,
)
from latentspace.viz.figures import space_figure
from latentspace.viz.grid import save_image

SHAPE_HELP = "Image shape HxW or HxWxC, e.g. 28x28x1 (MNIST) or 64x64x3."
SHORT_DIGITS = 15  # counts up to this long need no summary line
PRINT_MAX_DIGITS = 80  # longer counts are summarised unless --all-digits


def parse_shape(text: str) -> tuple[int, int, int]:
    """'28x28' or '28x28x1' -> (H, W, C)."""
    parts = re.split(r"[xX*]", text.strip())
    if len(parts) not in (2, 3) or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise typer.BadParameter(f"--shape must be HxW or HxWxC with positive integers, e.g. 28x28x1, got {text!r}")
    h, w, c = (int(p) for p in (parts if len(parts) == 3 else [*parts, "1"]))
    return h, w, c


def count_lines(count: SpaceCount, all_digits: bool = False) -> list[str]:
    """What the count is and why n*m is not it; every digit only when short or ``all_digits``."""
    h, w, c = count.shape
    n, m = count.n_axes, count.levels
    lines = [
        f"Images of {h}x{w}x{c} with {m:,} levels per value",
        f"  axes (pixels x channels): {h} x {w} x {c} = {n:,}",
    ]
    if count.exact is not None and (all_digits or count.digits <= PRINT_MAX_DIGITS):
        lines.append(f"  number of images: {m}^{n} = {count.exact_str()}")
    elif count.exact is not None:
        lines.append(f"  number of images: {m}^{n} (--all-digits prints all {count.digits:,} digits)")
    else:
        lines.append(f"  number of images: {m}^{n}, too long to print")
    if count.digits > SHORT_DIGITS:
        lines.append(f"  that is a number with {count.digits:,} digits, about {count.scientific()}")
    if count.exact == count.axes_times_values:  # 2 axes x 2 values: 2*2 = 2^2
        lines.append(f"  {n:,} x {m:,} is also {count.axes_times_values:,} here, by coincidence: {count.explanation}")
    else:
        lines.append(f"  why not {n:,} x {m:,} = {count.axes_times_values:,}? {count.explanation}")
    return lines


def grid_lines(count: SpaceCount, latent_dim: int, steps: int) -> list[str]:
    """A k^d latent grid next to the image count."""
    points = latent_grid_points(latent_dim, steps)
    log_points = latent_dim * math.log10(steps)
    gap = count.log10_count - log_points
    return [
        f"Latent grid: {steps} steps on each of {latent_dim} axes = {steps}^{latent_dim} = {points:,} points "
        f"(10^{log_points:.1f})",
        f"  images per grid point: 10^{gap:.1f}"
        + (": a latent space is a tiny, learned slice of image space" if gap > 3 else ""),
    ]


def coverage_lines(count: SpaceCount, dataset_size: int) -> list[str]:
    power = coverage_log10(dataset_size, count)
    return [f"Coverage: {dataset_size:,} images are 10^{power:.1f} of all {count.shape[0]}x{count.shape[1]}x"
            f"{count.shape[2]} images"]


def draw_space(shape: tuple[int, int, int], levels: int, out: Path) -> Path:
    """Every image of a tiny space as one grid picture at ``out``."""
    return save_image(space_figure(enumerate_space(shape, levels)), out)


ShapeOpt = Annotated[str, typer.Option("--shape", help=SHAPE_HELP)]
LevelsOpt = Annotated[int, typer.Option("--levels", help="Values per pixel channel (256 for 8-bit, 2 for binary).")]
EnumerateOpt = Annotated[bool, typer.Option("--enumerate", help="Draw every image of a tiny space (needs --out).")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Where --enumerate writes its grid (.png).")]
LatentDimOpt = Annotated[int | None, typer.Option("--latent-dim", help="Compare with a grid over this many latent axes.")]
StepsOpt = Annotated[int, typer.Option("--steps", help="Grid steps per latent axis (with --latent-dim).")]
AllDigitsOpt = Annotated[bool, typer.Option("--all-digits", help="Print every digit of the count, however long.")]
DatasetSizeOpt = Annotated[int | None, typer.Option("--dataset-size", help="Show how much of the space N images cover.")]


def space(
    shape: ShapeOpt = "28x28x1",
    levels: LevelsOpt = 256,
    enumerate_: EnumerateOpt = False,
    out: OutOpt = None,
    latent_dim: LatentDimOpt = None,
    steps: StepsOpt = 10,
    dataset_size: DatasetSizeOpt = None,
    all_digits: AllDigitsOpt = False,
) -> None:
    """Count every possible image of a shape, exactly."""
    dims = parse_shape(shape)
    if enumerate_ and out is None:
        raise typer.BadParameter("--enumerate needs --out FILE.png to draw the grid into")
    count = count_space(dims, levels)
    lines = count_lines(count, all_digits)
    if latent_dim is not None:
        lines += grid_lines(count, latent_dim, steps)
    if dataset_size is not None:
        lines += coverage_lines(count, dataset_size)
    if enumerate_:
        path = draw_space(dims, levels, out)
        lines.append(f"Drew all {count.exact:,} images to {path}")
    typer.echo("\n".join(lines))


def register(app: typer.Typer) -> None:
    app.command(name="space")(space)
