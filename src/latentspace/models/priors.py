"""Priors p(z): what the KL is measured against and what `sample` draws from before any fitted sampler."""
from __future__ import annotations

import torch

from latentspace.models.posterior import DiagonalGaussian, PointMass, gaussian_kl, log_normal


class StandardNormal:
    """p(z) = N(0, I) over D latent axes."""

    def __init__(self, latent_dim: int) -> None:
        self.latent_dim = latent_dim

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) summed over the latent axes: z (..., D) -> (...)."""
        return log_normal(z, torch.zeros_like(z), torch.zeros_like(z)).sum(-1)

    def sample(self, n: int, generator: torch.Generator | None = None, device: str | torch.device = "cpu"):
        """n draws (n, D) float32."""
        return torch.randn(n, self.latent_dim, generator=generator, device=device)

    def kl(self, posterior: DiagonalGaussian | PointMass) -> torch.Tensor:
        """KL(q(z|x) || p(z)) per image (B,), in closed form; 0 for a point mass (the 'ae', which has no KL)."""
        if isinstance(posterior, PointMass):
            return posterior.kl()
        return gaussian_kl(posterior.mean, posterior.logvar)
