"""The convolutional encoder/decoder family: stride-2 stages until the feature map is small, then dense layers.

The number of stages follows the image side (28 -> 14 -> 7, 32 -> 16 -> 8 -> 4, 64 -> ... -> 4), so one family
serves 28, 32, 64 and 128 px images with 1 or 3 channels.
"""
from __future__ import annotations

import torch
from torch import nn

from latentspace.models.config import ModelConfig

SMALLEST_SIDE = 7


def stage_plan(config: ModelConfig) -> tuple[list[int], int]:
    """Channels after each stride-2 stage and the final feature-map side."""
    side, channels = config.image_shape[1], []
    while side > SMALLEST_SIDE and side % 2 == 0:
        channels.append(min(config.width * 2 ** len(channels), config.width * 8))
        side //= 2
    if not channels:
        raise ValueError(f"image side {config.image_shape[1]} cannot be halved; use an even side such as 28, 32 or 64")
    return channels, side


def _dense(n_in: int, n_out: int, hidden: int) -> list[nn.Module]:
    if hidden == 0:
        return [nn.Linear(n_in, n_out)]
    return [nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, n_out)]


class Encoder(nn.Module):
    """(B, C, H, W) in [0, 1] -> (B, n_out)."""

    def __init__(self, config: ModelConfig, n_out: int) -> None:
        super().__init__()
        channels, side = stage_plan(config)
        layers: list[nn.Module] = []
        c_in = config.image_shape[0]
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.SiLU()]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), *_dense(c_in * side * side, n_out, config.hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Centring the input makes the first layer's job easier without touching the [0, 1] contract.
        return self.head(self.features(x * 2.0 - 1.0))


class Decoder(nn.Module):
    """(B, D) -> (B, C, H, W) likelihood parameters (logits or pre-sigmoid means)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        channels, side = stage_plan(config)
        c_top = channels[-1]
        self.head = nn.Sequential(*_dense(config.latent_dim, c_top * side * side, config.hidden), nn.SiLU())
        self.unflatten = nn.Unflatten(1, (c_top, side, side))
        layers: list[nn.Module] = []
        outs = list(reversed(channels[:-1])) + [config.image_shape[0]]
        c_in = c_top
        for i, c in enumerate(outs):
            layers.append(nn.ConvTranspose2d(c_in, c, 4, stride=2, padding=1))
            if i < len(outs) - 1:
                layers.append(nn.SiLU())
            c_in = c
        self.features = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.features(self.unflatten(self.head(z)))
