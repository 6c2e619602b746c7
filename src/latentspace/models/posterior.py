"""Posteriors q(z|x): what `encode` returns. Latent tools use `.mean` unless asked to `.sample`."""
from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2.0 * math.pi)


def log_normal(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; mean, exp(logvar)), broadcasting."""
    return -0.5 * (LOG_2PI + logvar + (z - mean).pow(2) * torch.exp(-logvar))


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per row, (B, D) -> (B,) nats."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


class DiagonalGaussian:
    """q(z|x) = N(mean, diag(std^2)); mean, logvar: (B, D)."""

    has_density = True  # log_prob exists: the KL and the IW bound apply

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor) -> None:
        self.mean = mean
        # Clamped so that exp() can neither overflow nor give a zero std that breaks log_prob.
        self.logvar = logvar.clamp(-30.0, 20.0)

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        eps = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.std * eps

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl(self) -> torch.Tensor:
        return gaussian_kl(self.mean, self.logvar)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z|x) summed over latent axes: z (B, D) or (S, B, D) -> (B,) or (S, B)."""
        return log_normal(z, self.mean, self.logvar).sum(dim=-1)


class PointMass:
    """The deterministic autoencoder's 'posterior': all mass at ``mean``; no noise, no KL."""

    has_density = False

    def __init__(self, mean: torch.Tensor) -> None:
        self.mean = mean

    @property
    def std(self) -> torch.Tensor:
        return torch.zeros_like(self.mean)

    @property
    def logvar(self) -> torch.Tensor:
        return torch.full_like(self.mean, -math.inf)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.mean

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl(self) -> torch.Tensor:
        return torch.zeros(self.mean.shape[0], device=self.mean.device, dtype=self.mean.dtype)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        raise ValueError("this model's posterior is a point mass and has no density; use a variational objective")


Posterior = DiagonalGaussian | PointMass
