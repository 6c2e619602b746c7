"""'resnet': the shape of today's image autoencoders (the latent-diffusion / diffusers AutoencoderKL), cut to a
small vector latent: residual blocks with GroupNorm and SiLU between stride-2 stages, optional self-attention
at the lowest resolution, then a dense head onto the code.

Stages follow the image side down to 4 px or an odd side (64 -> 32 -> 16 -> 8 -> 4, 32 -> ... -> 4,
28 -> 14 -> 7); channels are width x (1, 2, 4, 4, ...). The first stage (a strided stem) and the last (a
transposed convolution onto the pixels) are plain convolutions: residual blocks at full resolution cost
three times as much on a CPU for detail that the stride-2 stem and a sharpening loss already keep.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from latentspace.models.nets.base import Arch, StageDecoder, StageEncoder, dense, halvings

SMALLEST_SIDE = 4
MULTIPLIERS = (1, 2, 4)  # then 4 for every further stage
GROUPS = 8


def norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(GROUPS, channels), channels)


def stage_plan(config) -> tuple[list[int], int]:
    """Channels of each stage (the stem's first) and the final feature-map side."""
    n = halvings(config.image_shape[1], config.smallest_side)
    channels = [config.width * MULTIPLIERS[min(i, len(MULTIPLIERS) - 1)] for i in range(n)]
    return channels, config.image_shape[1] // 2**n


class ResBlock(nn.Module):
    """x + conv(silu(norm(conv(silu(norm(x)))))), channels kept."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = norm(channels), nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2, self.conv2 = norm(channels), nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))


class SelfAttention(nn.Module):
    """One-head self-attention over the H x W positions, residual (the latent-diffusion autoencoder's mid block)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).flatten(2).transpose(1, 2).chunk(3, dim=2)  # (B, HW, C) each
        a = F.scaled_dot_product_attention(q, k, v)
        return x + self.out(a.transpose(1, 2).reshape(b, c, h, w))


def _middle(channels: int, attention: bool) -> list[nn.Module]:
    return [ResBlock(channels), *([SelfAttention(channels)] if attention else [])]


def encoder(config, n_out: int) -> StageEncoder:
    channels, side = stage_plan(config)
    layers: list[nn.Module] = [nn.Conv2d(config.image_shape[0], channels[0], 4, stride=2, padding=1)]
    for c_in, c_out in zip(channels, channels[1:]):
        layers += [ResBlock(c_in), nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)]
    layers += [*_middle(channels[-1], config.attention), norm(channels[-1]), nn.SiLU()]
    return StageEncoder(nn.Sequential(*layers), channels[-1] * side * side, n_out, config.hidden)


def decoder(config) -> StageDecoder:
    channels, side = stage_plan(config)
    top = channels[-1]
    head = nn.Sequential(*dense(config.latent_dim, top * side * side, config.hidden))
    layers: list[nn.Module] = _middle(top, config.attention)
    for c_in, c_out in zip(reversed(channels), list(reversed(channels))[1:]):
        layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), ResBlock(c_out)]
    layers += [norm(channels[0]), nn.SiLU(),
               nn.ConvTranspose2d(channels[0], config.image_shape[0], 4, stride=2, padding=1)]
    return StageDecoder(head, (top, side, side), nn.Sequential(*layers))


RESNET = Arch(
    name="resnet",
    help="residual blocks with GroupNorm and SiLU, optional self-attention at the lowest resolution (--attention)",
    encoder=encoder,
    decoder=decoder,
    default_width=lambda image_shape: 32,
    default_smallest=SMALLEST_SIDE,
    legacy_smallest=SMALLEST_SIDE,
)
