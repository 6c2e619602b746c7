"""`latentspace reconstruct`: images and their reconstructions (decoded posterior means), two rows in one grid."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console

from latentspace.cli.encode import DataDirOpt, DeviceOpt, RunArg, SeedOpt, load_sources, open_model
from latentspace.data import ImageSet
from latentspace.latent.codes import decode_latents, encode_images
from latentspace.viz.grid import image_grid, save_image

out = Console()
ROW_LABELS = ("input", "recon")


def pick(images: ImageSet, n: int, seed: int) -> ImageSet:
    """At most n images, a seeded random choice kept in source order (all of them when there are few)."""
    if len(images) <= n:
        return images
    return images.subset(np.sort(np.random.default_rng(seed).choice(len(images), size=n, replace=False)))


def reconstruct_command(
    run_dir: RunArg,
    images: Annotated[list[str] | None, typer.Argument(help="Image files, a folder or a dataset name "
                                                        "(default: the run's test images).")] = None,
    out_path: Annotated[Path, typer.Option("--out", help="Grid image to write.")] = Path("reconstructions.png"),
    data: Annotated[str | None, typer.Option("--data", help="Dataset name or folder instead of IMAGES.")] = None,
    n: Annotated[int, typer.Option("--n", "-n", help="At most this many images (a seeded choice).")] = 16,
    split: Annotated[str | None, typer.Option("--split", help="train or test for a dataset.")] = None,
    seed: SeedOpt = 0,
    data_dir: DataDirOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Write a grid: the inputs in the top row, their reconstructions below."""
    if n <= 0:
        raise typer.BadParameter(f"expected a positive number of images, got {n}", param_hint="--n")
    if images and data:
        raise typer.BadParameter("give IMAGES or --data, not both", param_hint="--data")
    run, model = open_model(run_dir, device)
    if images or data:
        source = load_sources(run, images or [data], split, data_dir, seed)
    else:
        source = run.dataset(split or "test")
    shown = pick(source, n, seed)
    recon = decode_latents(model, encode_images(model, shown.images))
    grid = image_grid(np.concatenate([shown.images, recon]), ncols=len(shown), row_labels=ROW_LABELS)
    save_image(grid, out_path)
    out.print(f"wrote {out_path}: {len(shown)} images of {source.name} and their reconstructions, "
              f"{grid.width}x{grid.height} px", markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("reconstruct")(reconstruct_command)
