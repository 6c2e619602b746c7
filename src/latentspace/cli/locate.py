"""`latentspace locate`: is this image on the manifold? For each image: its code, reconstruction error, ELBO and
IWAE NLL, every on-manifold score with its percentile among the run's test images, its nearest training images
and a verdict at a threshold calibrated on the test split."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from latentspace import api
from latentspace.api.calibration import LocateOptions
from latentspace.api.locate import LocateResult, Location
from latentspace.cli.console import RichProgress
from latentspace.cli.encode import DeviceOpt, RunArg, SeedOpt
from latentspace.metrics.ood import SCORE_NAMES
from latentspace.utils.device import pick_device
from latentspace.utils.files import write_atomic
from latentspace.viz.figures import location_figure
from latentspace.viz.grid import save_image

out = Console()

KOpt = Annotated[int, typer.Option("--k", help="Importance samples per image for the IWAE NLL bound.")]
PercentileOpt = Annotated[float, typer.Option("--percentile", help="A score's threshold: this percentile of its "
                                              "values on the test split (99: 1% of real test images are called "
                                              "off the manifold).")]
ScoreOpt = Annotated[str, typer.Option("--score", help="The score the verdict uses: combined (default), nll, "
                                       "complexity, code_density, recon or framing.")]
JsonOpt = Annotated[Path | None, typer.Option("--json", help="Also write everything as JSON to this file "
                                              "('-' for standard output, instead of the tables).")]


def options(k: int, seed: int, percentile: float, neighbours: int, score: str) -> LocateOptions:
    try:
        return LocateOptions(k=k, seed=seed, percentile=percentile, neighbours=neighbours, score=score)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def location_table(loc: Location, number: int) -> Table:
    table = Table(title=f"{number}. {loc.name}: {loc.verdict.upper()}", title_justify="left",
                  caption="higher = more off the manifold; percentile among the test images", caption_justify="left")
    for name, justify in (("score", "left"), ("value", "right"), ("percentile", "right"), ("threshold", "right"),
                          ("", "left")):
        table.add_column(name, justify=justify)
    for r in loc.scores:
        mark = "off" if r.off else ""
        mark += "  <- verdict" if r.name == loc.score else ""
        table.add_row(SCORE_NAMES[r.name], f"{r.value:.4g}", f"{r.percentile:.1f}", f"{r.threshold:.4g}", mark)
    return table


def print_location(loc: Location, number: int, result: LocateResult) -> None:
    o = result.options
    out.print(location_table(loc, number))
    lines = [
        f"code z ({len(loc.z)}): " + " ".join(f"{v:+.2f}" for v in loc.z),
        f"reconstruction MSE {loc.recon_error:.4g}   ELBO {loc.elbo:.1f} nats   IWAE NLL {loc.iw_nll:.1f} nats "
        f"(k={loc.k})",
        "nearest training images (index: code distance): "
        + ", ".join(f"{i}: {d:.2f}" for i, d in zip(loc.neighbour_index, loc.neighbour_distance)),
        f"verdict: {loc.verdict}, because {loc.score} = {loc.decisive.value:.4g} is "
        f"{'above' if not loc.on_manifold else 'at or below'} {loc.decisive.threshold:.4g}, its "
        f"{o.percentile:g}th percentile among the {result.n_test} test images",
    ]
    for line in lines:
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    out.print()


def locate_command(
    run_dir: RunArg,
    images: Annotated[list[str], typer.Argument(help="Image files, or split:index (test:12, train:3; a bare "
                                                "number is a test index).")],
    json_path: JsonOpt = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="Write a figure: each image, its reconstruction, "
                                                  "its nearest training images and where it lands on the "
                                                  "map.")] = None,
    k: KOpt = 64,
    neighbours: Annotated[int, typer.Option("--neighbours", help="Nearest training images to list.")] = 8,
    percentile: PercentileOpt = 99.0,
    score: ScoreOpt = api.DEFAULT_SCORE,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
) -> None:
    """Say where each image lands in the run's latent space and whether the model counts it as one of its own.

    The first call scores the whole test split (cached in RUN/ood_calibration.safetensors) to calibrate the
    thresholds; later calls take about a second."""
    opts = options(k, seed, percentile, neighbours, score)
    refs = [api.image_source(text) for text in images]
    result = api.locate(run_dir, refs, opts, device=pick_device(device), progress=RichProgress())
    if json_path is not None:
        text = json.dumps(result.to_dict(), indent=2)
        if str(json_path) == "-":
            print(text)
        else:
            write_atomic(json_path, lambda p: p.write_text(text + "\n", encoding="utf-8"))
    if json_path is None or str(json_path) != "-":
        for number, loc in enumerate(result.locations, 1):
            print_location(loc, number, result)
    if out_path is not None:
        locs = result.locations
        figure = location_figure(
            np.stack([loc.image for loc in locs]), np.stack([loc.reconstruction for loc in locs]),
            np.stack([loc.neighbour_images for loc in locs]),
            [f"{i}: {'on' if loc.on_manifold else 'OFF'}" for i, loc in enumerate(locs, 1)],
            result.map.xy, np.array([loc.map_xy for loc in locs]),
            None if result.labels is None else result.labels[result.map.index], result.class_names,
            title=f"on or off the manifold ({opts.score} score, threshold at the test split's {opts.percentile:g}th "
                  "percentile)")
        save_image(figure, out_path)
        out.print(f"wrote {out_path}", markup=False, highlight=False)
    if json_path is not None and str(json_path) != "-":
        out.print(f"wrote {json_path}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("locate")(locate_command)
