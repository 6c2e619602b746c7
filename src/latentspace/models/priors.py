"""Priors p(z): what the KL and the IW bound are measured against, and what `sample` draws from before any
fitted sampler. Each is an ``nn.Module`` (a learned prior's parameters join the state dict) with

    log_prob(z) (..., D) -> (...)      sample(n, generator, device) -> (n, D)      kl(posterior, z) -> (B,)

``kl`` is in closed form where there is one and a one-sample Monte Carlo estimate at the posterior's own
sample ``z`` otherwise. Families with priors of their own (VampPrior, the hierarchy, the codebook) keep them
beside their objective in models.objectives.
"""
from __future__ import annotations

import torch
from torch import nn

from latentspace.models.posterior import DiagonalGaussian, PointMass, gaussian_kl, log_normal


class Prior(nn.Module):
    """The interface; ``kl`` defaults to the Monte Carlo estimate log q(z|x) - log p(z). ``title``: how the
    report and the sample verbs name it."""

    title = "p(z)"

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator | None = None, device: str | torch.device = "cpu"):
        raise NotImplementedError

    def kl(self, posterior, z: torch.Tensor) -> torch.Tensor:
        if not posterior.has_density:
            return posterior.kl()
        return posterior.log_prob(z) - self.log_prob(z)


class StandardNormal(Prior):
    """p(z) = N(0, I) over D latent axes."""

    title = "N(0, I)"

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) summed over the latent axes: z (..., D) -> (...)."""
        return log_normal(z, torch.zeros_like(z), torch.zeros_like(z)).sum(-1)

    def sample(self, n: int, generator: torch.Generator | None = None, device: str | torch.device = "cpu"):
        """n draws (n, D) float32."""
        return torch.randn(n, self.latent_dim, generator=generator, device=device)

    def kl(self, posterior: DiagonalGaussian | PointMass, z: torch.Tensor | None = None) -> torch.Tensor:
        """KL(q(z|x) || p(z)) per image (B,), in closed form for a diagonal Gaussian; 0 for a point mass (the
        'ae', which has no KL)."""
        if isinstance(posterior, DiagonalGaussian):
            return gaussian_kl(posterior.mean, posterior.logvar)
        return super().kl(posterior, z)


def mixture_log_prob(z: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor) -> torch.Tensor:
    """log (1/K) sum_k N(z; means[k], diag exp(logvars[k])) for z (..., D), means/logvars (K, D) -> (...).

    Expanded as matrix products, so no (..., K, D) tensor is ever made (K pseudo-inputs times thousands of
    importance samples would not fit)."""
    flat = z.reshape(-1, z.shape[-1])
    inv = torch.exp(-logvars)  # (K, D)
    quad = flat.pow(2) @ inv.T - 2.0 * flat @ (means * inv).T + (means.pow(2) * inv).sum(1)  # (N, K)
    const = logvars.sum(1) + z.shape[-1] * torch.log(torch.tensor(2.0 * torch.pi, device=z.device))
    log_k = -0.5 * (quad + const)
    out = torch.logsumexp(log_k, dim=1) - torch.log(torch.tensor(float(means.shape[0]), device=z.device))
    return out.reshape(z.shape[:-1])
