"""`latentspace sample`: new images from codes drawn by a sampler (the prior N(0, I) by default)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Protocol

import numpy as np
import typer
from rich.console import Console

from latentspace import api
from latentspace.cli.console import RichProgress
from latentspace.cli.encode import DeviceOpt, RunArg, open_model
from latentspace.latent.codes import decode_latents, model_device
from latentspace.latent.samplers import PriorSampler
from latentspace.models import Autoencoder
from latentspace.train import Run
from latentspace.viz.grid import image_grid, save_image

out = Console()


class Sampler(Protocol):
    def sample(self, n: int, generator: np.random.Generator) -> np.ndarray: ...


@dataclass(frozen=True)
class SamplerOptions:
    """What the command line says about the sampler: the seed (of fitting and draws), GMM components."""

    seed: int = 0
    components: int = 10


def prior_sampler(run: Run, model: Autoencoder, options: SamplerOptions) -> Sampler:
    return PriorSampler(model.config.latent_dim)


def gmm_sampler(run: Run, model: Autoencoder, options: SamplerOptions) -> Sampler:
    """A GMM fitted on the encoded train split, cached in <run>/gmm.json (api.gmm_sampler)."""
    return api.gmm_sampler(run.path, options.components, options.seed, device=model_device(model),
                           progress=RichProgress())


# name -> factory(run, model, options) giving a ready sampler (fitted, for those that need fitting).
SAMPLERS: dict[str, Callable[[Run, Autoencoder, SamplerOptions], Sampler]] = {
    "prior": prior_sampler, "gmm": gmm_sampler,
}


def make_sampler(name: str, run: Run, model: Autoencoder, options: SamplerOptions) -> Sampler:
    if name not in SAMPLERS:
        raise ValueError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {name!r}")
    return SAMPLERS[name](run, model, options)


def sample_command(
    run_dir: RunArg,
    n: Annotated[int, typer.Option("--n", "-n", help="How many images.")] = 64,
    out_path: Annotated[Path, typer.Option("--out", help="Grid image to write.")] = Path("samples.png"),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the draws.")] = 0,
    sampler: Annotated[str, typer.Option("--sampler", help="Where codes come from: "
                                         f"{', '.join(SAMPLERS)}.")] = "prior",
    components: Annotated[int, typer.Option("--components", help="Mixture components of --sampler gmm.")] = 10,
    device: DeviceOpt = "auto",
) -> None:
    """Draw N codes, decode them and write them as one grid."""
    if n <= 0:
        raise typer.BadParameter(f"expected a positive number of images, got {n}", param_hint="--n")
    if components < 1:
        raise typer.BadParameter(f"expected at least one component, got {components}", param_hint="--components")
    run, model = open_model(run_dir, device)
    options = SamplerOptions(seed=seed, components=components)
    z = make_sampler(sampler, run, model, options).sample(n, np.random.default_rng(seed))
    grid = image_grid(decode_latents(model, z))
    save_image(grid, out_path)
    out.print(f"wrote {out_path}: {n} samples ({sampler}, seed {seed}), {grid.width}x{grid.height} px",
              markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("sample")(sample_command)
