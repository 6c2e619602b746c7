"""`latentspace interpolate`: paths between two images through pixel space and latent space, and how real
each path looks, for one pair (a figure) or for many random test pairs (a table)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from latentspace import api
from latentspace.cli.console import RichProgress
from latentspace.cli.encode import DeviceOpt, RunArg
from latentspace.metrics.realness import FRAME_HEADER, PATHS, RealnessTable
from latentspace.utils.device import pick_device
from latentspace.utils.files import write_json
from latentspace.viz.animate import interpolation_frames, save_gif
from latentspace.viz.figures import interpolation_figure
from latentspace.viz.grid import save_image

out = Console()
SCORE_DIGITS = {"classifier_confidence": 3, "elbo": 1, "nearest_distance": 4}

ImageArg = Annotated[str | None, typer.Argument(help="A test-split index or an image file.", show_default=False)]


def pair_table(result: api.InterpolationResult) -> Table:
    """The mean score of each path over its middle frames (t in 0.25..0.75)."""
    means = result.mean_scores()
    table = Table(title=f"{result.sources[0]} -> {result.sources[1]}: mean over the middle frames")
    for i, name in enumerate(FRAME_HEADER):
        table.add_column(name, justify="left" if i == 0 else "right")
    for path in PATHS:
        table.add_row(path, *("-" if math.isnan(v) else f"{v:.{SCORE_DIGITS[k]}f}" for k, v in means[path].items()))
    return table


def realness_table(result: RealnessTable) -> Table:
    lo, hi = result.middle
    table = Table(title=f"{result.n_pairs} random test pairs, {result.steps} frames each: mean ± s.e. over "
                        f"pairs of the frames with t in {lo:g}..{hi:g}; manifold and sharpness against "
                        f"{result.n_reference} real test images")
    for i, name in enumerate(RealnessTable.HEADER):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in result.rows():
        table.add_row(*row)
    return table


def interpolate_command(
    run_dir: RunArg,
    a: ImageArg = None,
    b: ImageArg = None,
    steps: Annotated[int, typer.Option("--steps", help="Frames per path, both ends included.")] = 10,
    out_path: Annotated[Path, typer.Option("--out", help="Figure to write (one pair).")] = Path("interpolation.png"),
    gif: Annotated[bool, typer.Option("--gif", help="Also write an animation beside --out (.gif).")] = False,
    pairs: Annotated[int | None, typer.Option("--pairs", help="Score N random test pairs instead of A and B.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the pairs and of the ELBO noise.")] = 0,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the --pairs table as JSON.")] = None,
    score: Annotated[bool, typer.Option("--score/--no-score", help="Rate every frame (trains the evaluator "
                                        "on first use).")] = True,
    device: DeviceOpt = "auto",
) -> None:
    """Interpolate between images A and B (figure + scores), or score --pairs N random test pairs."""
    if steps < 2:
        raise typer.BadParameter(f"expected at least 2 frames, got {steps}", param_hint="--steps")
    dev = pick_device(device)
    progress = RichProgress()
    if pairs is not None:
        if a is not None or b is not None:
            raise typer.BadParameter("give images A and B, or --pairs N, not both", param_hint="--pairs")
        result = api.interpolation_table(run_dir, n_pairs=pairs, steps=steps, seed=seed, device=dev,
                                         progress=progress)
        out.print(realness_table(result))
        if json_path is not None:
            write_json(json_path, result.to_dict())
            out.print(f"wrote {json_path}", markup=False, highlight=False)
        return
    if a is None or b is None:
        raise typer.BadParameter("give two images A and B (test indices or files), or --pairs N", param_hint="A B")
    result = api.interpolate(run_dir, api.image_ref(a), api.image_ref(b), steps=steps, device=dev, score=score,
                             seed=seed, progress=progress)
    figure = interpolation_figure(result.paths, result.scores)
    save_image(figure, out_path)
    written = [f"{out_path} ({figure.width}x{figure.height} px)"]
    if gif:
        gif_path = save_gif(interpolation_frames(result.paths), out_path.with_suffix(".gif"))
        written.append(str(gif_path))
    if result.scores is not None:
        out.print(pair_table(result))
    out.print(f"wrote {', '.join(written)}", markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("interpolate")(interpolate_command)
