"""`latentspace sample`: new images from codes drawn by a sampler: the prior N(0, I), a Gaussian mixture fitted
to the encoded data (gmm), or a latent diffusion model trained on the codes (diffusion)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console

from latentspace import api
from latentspace.cli.console import RichProgress
from latentspace.cli.encode import DeviceOpt, RunArg
from latentspace.latent.codes import decode_latents
from latentspace.latent.diffusion import DiffusionConfig
from latentspace.utils.device import pick_device
from latentspace.utils.files import write_npz
from latentspace.viz.grid import image_grid, save_image

out = Console()


def sample_command(
    run_dir: RunArg,
    n: Annotated[int, typer.Option("--n", "-n", help="How many images.")] = 64,
    out_path: Annotated[Path, typer.Option("--out", help="A grid image (.png, .jpg, .webp) or .npz: uint8 "
                                           "'images' (N, C, H, W) and their codes 'z' (N, D).")] = Path("samples.png"),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the draws (and of fitting a learned prior).")] = 0,
    sampler: Annotated[str, typer.Option("--sampler", help="Where codes come from: prior (the family's own p(z): "
                                         "N(0, I), the VampPrior, the hierarchy or the codebook), gmm (a mixture "
                                         "fitted to the encoded train split) or diffusion (a latent "
                                         "diffusion model; fitted on first use, then stored in the run).")] = "prior",
    components: Annotated[int, typer.Option("--components", help="Mixture components of --sampler gmm.")] = 10,
    steps: Annotated[int | None, typer.Option("--steps", help="DDIM steps of --sampler diffusion "
                                              "(default 50).")] = None,
    device: DeviceOpt = "auto",
) -> None:
    """Draw N codes, decode them and write them as one grid (or as arrays to an .npz file)."""
    if n <= 0:
        raise typer.BadParameter(f"expected a positive number of images, got {n}", param_hint="--n")
    if components < 1:
        raise typer.BadParameter(f"expected at least one component, got {components}", param_hint="--components")
    if sampler not in api.PRIOR_KINDS:
        raise typer.BadParameter(f"expected one of {', '.join(api.PRIOR_KINDS)}, got {sampler!r}",
                                 param_hint="--sampler")
    run, model = api.open_model(run_dir, pick_device(device))
    diffusion = DiffusionConfig(latent_dim=model.config.latent_dim, seed=seed)
    chosen = api.sampler_for(run, model, sampler, seed, components, diffusion, RichProgress())
    generator = np.random.default_rng(seed)
    z = chosen.sample(n, generator, steps=steps) if sampler == "diffusion" and steps else chosen.sample(n, generator)
    images = decode_latents(model, z)
    if out_path.suffix.lower() == ".npz":
        write_npz(out_path, {"images": images, "z": z.astype(np.float32)})
        what = f"images {images.shape} uint8 and z {z.shape}"
    else:
        grid = image_grid(images)
        save_image(grid, out_path)
        what = f"{grid.width}x{grid.height} px"
    out.print(f"wrote {out_path}: {n} samples ({sampler}, seed {seed}), {what}", markup=False, highlight=False,
              soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("sample")(sample_command)
