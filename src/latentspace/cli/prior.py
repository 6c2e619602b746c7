"""`latentspace prior`: fit a learned prior over the run's codes (a Gaussian mixture or latent diffusion) and
store it in the run folder, where `sample --sampler` and `evaluate` find it."""
from __future__ import annotations

import time
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from latentspace import api
from latentspace.cli.console import RichProgress
from latentspace.cli.encode import DeviceOpt, RunArg
from latentspace.latent.diffusion import DiffusionConfig
from latentspace.utils.device import pick_device

out = Console()
LEARNED = ("gmm", "diffusion")


def fit_table(z: np.ndarray, samples: np.ndarray, kind: str, seconds: float) -> Table:
    """How close the prior's samples are to the training codes in their first two moments."""
    table = Table(title=f"{kind} prior against the {len(z):,} encoded training images")
    for name in ("measure", "value"):
        table.add_column(name, justify="left" if name == "measure" else "right")
    mean_gap = float(np.abs(samples.mean(0) - z.mean(0)).max())
    cov_gap = float(np.abs(np.cov(samples.T) - np.cov(z.T)).max())
    table.add_row("fitted (or read back) in, s", f"{seconds:.1f}")
    table.add_row("largest |mean gap| over axes", f"{mean_gap:.4f}")
    table.add_row("largest |covariance gap|", f"{cov_gap:.4f}")
    table.add_row("largest code variance", f"{float(z.var(0).max()):.4f}")
    return table


def prior_command(
    run_dir: RunArg,
    kind: Annotated[str, typer.Option("--kind", help="gmm (a Gaussian mixture) or diffusion (a latent diffusion "
                                      "model: an MLP denoiser, DDPM training, DDIM sampling).")] = "diffusion",
    train_steps: Annotated[int, typer.Option("--train-steps", help="Optimiser steps of the diffusion model.")] = 4000,
    components: Annotated[int, typer.Option("--components", help="Mixture components (--kind gmm).")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the fit.")] = 0,
    refit: Annotated[bool, typer.Option("--refit", help="Fit again even if the run holds this prior.")] = False,
    device: DeviceOpt = "auto",
) -> None:
    """Fit a learned prior on the encoded train split and store it in the run (refitted when the model changes).

    `latentspace sample RUN --sampler diffusion` then draws from it."""
    if kind not in LEARNED:
        raise typer.BadParameter(f"expected one of {', '.join(LEARNED)}, got {kind!r}", param_hint="--kind")
    run, model = api.open_model(run_dir, pick_device(device))
    progress = RichProgress()
    start = time.perf_counter()
    if kind == "diffusion":
        config = DiffusionConfig(latent_dim=model.config.latent_dim, train_steps=train_steps, seed=seed)
        sampler = api.fitted_diffusion(run, model, config, progress, refit=refit)
        written = f"{run.path / api.DIFFUSION_WEIGHTS} and {api.DIFFUSION_META}"
    else:
        if refit:
            (run.path / api.GMM_FILE).unlink(missing_ok=True)
        sampler = api.fitted_gmm(run, model, components, seed, progress)
        written = str(run.path / api.GMM_FILE)
    seconds = time.perf_counter() - start
    _, z = api.cached_codes(run, model, "train", progress)
    out.print(fit_table(z, sampler.sample(min(len(z), 5000), np.random.default_rng(seed)), kind, seconds))
    out.print(f"stored in {written}", markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("prior")(prior_command)
