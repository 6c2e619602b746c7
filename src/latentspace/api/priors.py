"""Where codes come from when generating: the prior N(0, I) the model was trained towards, or a prior learned on
the encoded train split afterwards, a Gaussian mixture (``gmm``) or a latent diffusion model (``diffusion``).

Learned priors are stored in the run folder, keyed by the weights (and their own settings), so they are fitted
once per model and refitted when the model changes:

    gmm.json                          {"key": ..., "sampler": GMMSampler.to_dict()}
    prior_diffusion.safetensors       the denoiser's (EMA) weights and the codes' standardisation
    prior_diffusion.json              {"key": ..., "config": ..., "final_loss": ..., "fit_seconds": ...}
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import numpy as np

from latentspace.api.common import Device, cached_codes, model_key, open_model
from latentspace.latent.diffusion import DiffusionConfig, DiffusionPrior
from latentspace.latent.samplers import Generator, GMMSampler, ModelPriorSampler, PriorSampler, Snapped
from latentspace.models import Autoencoder, StandardNormal
from latentspace.train.run import Run
from latentspace.utils.files import read_json, read_safetensors, save_safetensors, write_json
from latentspace.utils.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)

GMM_FILE = "gmm.json"
DIFFUSION_WEIGHTS = "prior_diffusion.safetensors"
DIFFUSION_META = "prior_diffusion.json"
KINDS = ("prior", "gmm", "diffusion")
T = TypeVar("T")


class Sampler(Protocol):
    latent_dim: int

    def sample(self, n: int, generator: Generator) -> np.ndarray: ...


def gmm_sampler(
    run_dir: str | Path, components: int = 10, seed: int = 0, device: Device = "cpu",
    progress: Progress = NULL_PROGRESS,
) -> GMMSampler:
    """A Gaussian mixture of ``components`` fitted to the encoded train split; cached in ``<run>/gmm.json``
    and reused while the model, ``components`` and ``seed`` stay the same."""
    run, model = open_model(run_dir, device)
    return fitted_gmm(run, model, components, seed, progress)


def fitted_gmm(
    run: Run, model: Autoencoder, components: int = 10, seed: int = 0, progress: Progress = NULL_PROGRESS,
) -> GMMSampler:
    """``gmm_sampler`` for a run that is already open."""
    path = run.path / GMM_FILE
    key = {"components": components, "seed": seed, **model_key(run)}
    if path.is_file():
        saved = read_json(path)
        if isinstance(saved, dict) and saved.get("key") == key and "sampler" in saved:
            log.info("reusing the GMM sampler in %s", path)
            return GMMSampler.from_dict(saved["sampler"])
    _, z = cached_codes(run, model, "train", progress)
    sampler = GMMSampler(components, seed=seed).fit(z)
    write_json(path, {"key": key, "sampler": sampler.to_dict()})
    return sampler


def _diffusion_key(run: Run, config: DiffusionConfig) -> dict[str, Any]:
    return {"config": config.to_dict(), **model_key(run)}


def stored_prior(run: Run, weights: str, meta_file: str, key: dict[str, Any], load: Callable[..., T]) -> T | None:
    """The learned prior stored as ``weights`` + ``meta_file`` in the run when its key is ``key``, loaded by
    ``load(tensors, meta)``; else None. A damaged file is a one-line ValueError naming it."""
    meta_path, weights_path = run.path / meta_file, run.path / weights
    if not (meta_path.is_file() and weights_path.is_file()):
        return None
    meta = read_json(meta_path)
    if not isinstance(meta, dict) or meta.get("key") != key:
        return None
    try:
        return load(read_safetensors(weights_path)[0], meta)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{weights_path}: damaged learned prior ({e}); delete it and it will be refitted") from None


def store_prior(run: Run, weights: str, meta_file: str, key: dict[str, Any], prior: Any, seconds: float) -> None:
    """Write a fitted prior's ``state()``: weights first, then the JSON that names them, so a JSON whose key
    matches always sits beside its weights."""
    tensors, meta = prior.state()
    save_safetensors(run.path / weights, tensors, {"format": "latentspace.prior/1"})
    write_json(run.path / meta_file, {"key": key, **meta, "fit_seconds": seconds})


def stored_diffusion(run: Run, config: DiffusionConfig) -> DiffusionPrior | None:
    """The diffusion prior stored for these weights and this config, else None."""
    return stored_prior(run, DIFFUSION_WEIGHTS, DIFFUSION_META, _diffusion_key(run, config), DiffusionPrior.from_state)


def fitted_diffusion(
    run: Run, model: Autoencoder, config: DiffusionConfig | None = None, progress: Progress = NULL_PROGRESS,
    refit: bool = False,
) -> DiffusionPrior:
    """The run's diffusion prior: stored, or trained now on the encoded train split and stored."""
    config = config or DiffusionConfig(latent_dim=model.config.latent_dim)
    if config.latent_dim != model.config.latent_dim:
        raise ValueError(f"the diffusion prior has latent_dim {config.latent_dim}, the model {model.config.latent_dim}")
    if not refit and (stored := stored_diffusion(run, config)) is not None:
        log.info("reusing the diffusion prior in %s", run.path / DIFFUSION_WEIGHTS)
        return stored
    _, z = cached_codes(run, model, "train", progress)
    start = time.perf_counter()
    prior = DiffusionPrior(config).fit(z, progress)
    store_prior(run, DIFFUSION_WEIGHTS, DIFFUSION_META, _diffusion_key(run, config), prior, time.perf_counter() - start)
    return prior


def sampler_for(
    run: Run, model: Autoencoder, kind: str, seed: int = 0, components: int = 10,
    diffusion: DiffusionConfig | None = None, progress: Progress = NULL_PROGRESS,
) -> Sampler:
    """A ready sampler of ``kind`` ('prior', 'gmm' or 'diffusion'), fitting a learned one on first use. 'prior' is
    the model's own p(z); a discrete model's (VQ-VAE) learned samplers are snapped onto its codebook."""
    if kind == "prior":
        return model_prior(model)
    if kind == "gmm":
        sampler = fitted_gmm(run, model, components, seed, progress)
    elif kind == "diffusion":
        sampler = fitted_diffusion(run, model, diffusion, progress)
    else:
        raise ValueError(f"the sampler must be one of {', '.join(KINDS)}, got {kind!r}")
    return on_codebook(model, sampler)


def on_codebook(model: Autoencoder, sampler: Sampler) -> Sampler:
    """A learned sampler as the model can decode it: snapped onto a discrete model's codebook (VQ-VAE)."""
    snap = getattr(model.prior, "snap", None)
    return sampler if snap is None else Snapped(sampler, snap)


def model_prior(model: Autoencoder) -> Sampler:
    """The model's own prior as a sampler: the numpy N(0, I) sampler when that is the prior (its draws are
    what every earlier run drew), else the prior's own sample()."""
    if type(model.prior) is StandardNormal:
        return PriorSampler(model.config.latent_dim)
    return ModelPriorSampler(model)


def prior(
    run_dir: str | Path, kind: str = "diffusion", seed: int = 0, components: int = 10,
    diffusion: DiffusionConfig | None = None, device: Device = "cpu", progress: Progress = NULL_PROGRESS,
) -> Sampler:
    """``sampler_for`` from a run folder."""
    run, model = open_model(run_dir, device)
    return sampler_for(run, model, kind, seed, components, diffusion, progress)
