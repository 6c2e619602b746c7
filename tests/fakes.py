"""A tiny fake model that honours the model contract with known answers.

encode: mean = Q^T (x_flat - 0.5), with Q (P, D) having orthonormal columns; decode: clamp(Q z + 0.5, 0, 1).
With D = P (Q square and orthogonal) decode(encode(x)) == x, so every latent path decodes to the same
path in pixel space: the linear model makes latent maths checkable against pixel maths.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from latentspace.models.posterior import DiagonalGaussian


@dataclass(frozen=True)
class FakeConfig:
    image_shape: tuple[int, int, int] = (1, 2, 2)
    latent_dim: int = 4


class LinearFake(nn.Module):
    """Orthonormal linear 'autoencoder' on flattened pixels; posterior std fixed at ``std``."""

    def __init__(self, image_shape=(1, 2, 2), latent_dim: int | None = None, std: float = 0.1, seed: int = 0) -> None:
        super().__init__()
        pixels = int(np.prod(image_shape))
        latent_dim = pixels if latent_dim is None else latent_dim
        self.config = FakeConfig(tuple(image_shape), latent_dim)
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(pixels, pixels, generator=g, dtype=torch.float64))
        self.register_buffer("q", q[:, :latent_dim].float())
        self.log_std = nn.Parameter(torch.full((latent_dim,), float(np.log(std))))
        self.calls_in_training_mode = 0

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        self.calls_in_training_mode += int(self.training)
        mean = (x.flatten(1) - 0.5) @ self.q
        return DiagonalGaussian(mean, (2 * self.log_std).expand_as(mean))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        self.calls_in_training_mode += int(self.training)
        return (z @ self.q.T + 0.5).clamp(0.0, 1.0).reshape(-1, *self.config.image_shape)


def random_images(n: int, shape=(1, 2, 2), seed: int = 0) -> np.ndarray:
    """uint8 (n, C, H, W) uniform noise."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)
