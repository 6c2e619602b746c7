"""How likely a model finds a set of images: the ELBO and the tighter importance-weighted bound (Burda et al. 2016).

    ELBO(x)      = E_q[log p(x|z)] - KL(q(z|x) || p(z))                       <= log p(x)
    IW_k(x)      = log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x),  z_i ~ q(z|x)   <= log p(x)

E[IW_1] = ELBO, and E[IW_k] rises towards log p(x) as k grows, so ``importance_weighted_nll`` (= -IW_k) is a
tighter upper bound on the negative log-likelihood than -ELBO.

Units. Everything is in nats per image; ``bits_per_dim = nats / (C * H * W * ln 2)``. These are *not* the bits
per dimension of 8-bit data reported in the likelihood literature: the pixels are scored as intensities in
[0, 1] — a Bernoulli cross-entropy on non-binary targets (grey data), or a Gaussian density on [0, 1]
(colour data, which may be negative). Comparable numbers would need a discretised likelihood (e.g. uniform
dequantisation: continuous density bits/dim + 8); use these to compare models on the same data and likelihood.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from latentspace.data.transforms import batch_rows, to_float
from latentspace.latent.codes import check_images, evaluating, model_device
from latentspace.utils.progress import NULL_PROGRESS, Progress



@dataclass(frozen=True)
class ElboResult:
    """Means over ``n`` images, nats per image: elbo (higher is better) = -(recon_nll + kl)."""

    elbo_nats: float
    recon_nll_nats: float
    kl_nats: float
    bits_per_dim: float  # -elbo / (C H W ln 2): an upper bound on the NLL in bits per pixel value
    n: int


@dataclass(frozen=True)
class IWResult:
    """Importance-weighted NLL bound with ``k`` samples, mean over ``n`` images (lower is better)."""

    nll_nats: float
    bits_per_dim: float
    k: int
    n: int


def bits_per_dim(nats: float | np.ndarray, image_shape: tuple[int, ...]) -> float | np.ndarray:
    """nats per image -> bits per pixel value: nats / (C * H * W * ln 2)."""
    return nats / (math.prod(image_shape) * math.log(2.0))


def elbo_terms(
    model: torch.nn.Module, x: torch.Tensor, n_samples: int = 1, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(recon_nll, kl), each (B,) nats, for x (B, C, H, W) float in [0, 1]: the reconstruction NLL averaged over
    ``n_samples`` posterior samples (drawn with ``generator``) and the KL to the model's prior (analytic where
    it has a closed form, else the Monte Carlo estimate over the same samples). Call under no_grad."""
    posterior = model.encode(x)
    z = torch.stack([posterior.sample(generator) for _ in range(n_samples)])  # (S, B, D)
    params = model.decode_params(z.flatten(0, 1))
    target = x.expand(n_samples, *x.shape).flatten(0, 1)
    recon = model.recon_nll(params, target).view(n_samples, -1).mean(0)
    kl = torch.stack([model.prior.kl(posterior, zs) for zs in z]).mean(0)
    return recon, kl


def per_image_elbo(
    model: torch.nn.Module,
    images: np.ndarray,
    n_samples: int = 1,
    batch_size: int = 500,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """ELBO of each uint8 image (N, C, H, W) -> (N,) float64 nats, reconstruction term averaged over
    ``n_samples`` posterior samples (more samples: less noise, same expectation). For an 'ae' model the
    KL is 0 and the sample is the code itself, so this is just -recon_nll."""
    check_images(model, images)
    if n_samples < 1 or batch_size < 1:
        raise ValueError(f"n_samples and batch_size must be >= 1, got {n_samples}, {batch_size}")
    device = model_device(model)
    out = np.empty(len(images), np.float64)
    with evaluating(model):
        for i in range(0, len(images), batch_size):
            recon, kl = elbo_terms(model, to_float(images[i : i + batch_size]).to(device), n_samples, generator)
            out[i : i + batch_size] = (-(recon + kl)).double().cpu().numpy()
    return out


def elbo_nats(
    model: torch.nn.Module, images: np.ndarray, batch_size: int = 500, generator: torch.Generator | None = None
) -> ElboResult:
    """Mean ELBO, reconstruction NLL and KL of uint8 images (N, C, H, W), one posterior sample each."""
    check_images(model, images)
    if len(images) == 0:
        raise ValueError("elbo_nats needs at least one image, got 0")
    device = model_device(model)
    sums = np.zeros(2, np.float64)
    with evaluating(model):
        for i in range(0, len(images), batch_size):
            recon, kl = elbo_terms(model, to_float(images[i : i + batch_size]).to(device), 1, generator)
            sums += [recon.double().sum().item(), kl.double().sum().item()]
    recon_mean, kl_mean = (float(v) for v in sums / len(images))
    elbo = -(recon_mean + kl_mean)
    return ElboResult(
        elbo_nats=elbo, recon_nll_nats=recon_mean, kl_nats=kl_mean,
        bits_per_dim=float(bits_per_dim(-elbo, images.shape[1:])), n=len(images),
    )


def log_importance_weights(
    model: torch.nn.Module, x: torch.Tensor, k: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """log p(x|z_i) + log p(z_i) - log q(z_i|x) for k samples z_i ~ q(z|x): x (B, C, H, W) in [0, 1] -> (k, B).

    p(z) is the model's own prior (N(0, I), the VampPrior's mixture, the hierarchy's top-down chain). Decodes at
    most ``batch_rows`` of the image shape (or the batch) at once. ValueError for a model without a posterior
    density ('ae', 'wae-mmd', 'vq-vae')."""
    posterior = model.encode(x)
    if not posterior.has_density:
        raise ValueError(
            "importance-weighted likelihood needs a posterior density q(z|x); this model's posterior is a "
            f"{type(posterior).__name__} (objective {model.config.objective!r}), use a variational model or elbo_nats"
        )
    z = torch.stack([posterior.sample(generator) for _ in range(k)])  # (k, B, D)
    log_pz = model.prior.log_prob(z)
    log_qz = posterior.log_prob(z)
    per_pass = max(1, batch_rows(x.shape[1:]) // x.shape[0])
    recon = torch.cat([
        model.recon_nll(model.decode_params(zc.flatten(0, 1)), x.expand(len(zc), *x.shape).flatten(0, 1))
        .view(len(zc), -1)
        for zc in z.split(per_pass)
    ])
    return -recon + log_pz - log_qz


def importance_weighted_nll(
    model: torch.nn.Module,
    images: np.ndarray,
    k: int = 64,
    batch_size: int = 100,
    generator: torch.Generator | None = None,
    progress: Progress = NULL_PROGRESS,
) -> IWResult:
    """-IW_k averaged over uint8 images (N, C, H, W): an upper bound on -log p(x) in nats, tighter than -ELBO
    for k > 1 and equal to it in expectation for k = 1. ValueError for 'ae' models (no posterior density)."""
    check_images(model, images)
    if k < 1 or batch_size < 1 or len(images) == 0:
        raise ValueError(f"importance_weighted_nll needs k >= 1, batch_size >= 1 and images, got {k}, {batch_size}, "
                         f"{len(images)} images")
    device = model_device(model)
    total = 0.0
    progress.start(len(images), f"IW bound, k={k}")
    try:
        with evaluating(model):
            for i in range(0, len(images), batch_size):
                log_w = log_importance_weights(model, to_float(images[i : i + batch_size]).to(device), k, generator)
                log_px = torch.logsumexp(log_w.double(), dim=0) - math.log(k)
                total -= log_px.sum().item()
                progress.advance(len(log_px))
    finally:
        progress.close()
    nll = total / len(images)
    return IWResult(nll_nats=nll, bits_per_dim=float(bits_per_dim(nll, images.shape[1:])), k=k, n=len(images))
