"""`latentspace decode`: latent codes (a .npz from `encode`, or any (N, D) array) -> one PNG per code + a grid."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console

from latentspace.cli.console import RichProgress
from latentspace.cli.encode import DeviceOpt, RunArg, load_codes, open_model
from latentspace.latent.codes import decode_latents
from latentspace.viz.grid import image_grid, save_image

out = Console()


def write_pngs(images: np.ndarray, out_dir: Path) -> list[Path]:
    """uint8 (N, C, H, W) -> out_dir/0000.png ... (zero-padded to at least 4 digits), in order."""
    width = max(4, len(str(len(images) - 1)))
    paths = []
    for i, image in enumerate(images):
        paths.append(save_image(image_grid(image[None], ncols=1, pad=0), out_dir / f"{i:0{width}d}.png"))
    return paths


def decode_command(
    run_dir: RunArg,
    codes: Annotated[Path, typer.Argument(help="Codes file: .npz with a 'z' array (N, D), or a .npy.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the PNGs and grid.png.")] = Path("decoded"),
    grid: Annotated[bool, typer.Option("--grid/--no-grid", help="Also write grid.png of all images.")] = True,
    device: DeviceOpt = "auto",
) -> None:
    """Decode every code to an image (the decoder's mean) and write them as PNGs."""
    _, model = open_model(run_dir, device)
    z = load_codes(codes)["z"]
    images = decode_latents(model, z, progress=RichProgress())
    paths = write_pngs(images, out_dir)
    if grid:
        save_image(image_grid(images), out_dir / "grid.png")
    extra = " and grid.png" if grid else ""
    out.print(f"wrote {len(paths)} images ({paths[0].name} .. {paths[-1].name}){extra} to {out_dir}",
              markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("decode")(decode_command)
