"""What the encoder/decoder families share: the registry entry, the dense head and the stage plan."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Arch:
    """A network family. encoder(config, n_out): (B, C, H, W) in [0, 1] -> (B, n_out); decoder(config):
    (B, D) -> (B, C, H, W) likelihood parameters. default_width(image_shape): the first stage's channels
    for images of that (C, H, W) shape when the user gives none. default_smallest: the side down to which
    stride-2 stages halve the image (the map the dense head reads) when the user gives none;
    legacy_smallest: the one that runs written before it was a setting used."""

    name: str
    help: str
    encoder: Callable[..., nn.Module]
    decoder: Callable[..., nn.Module]
    default_width: Callable[[tuple[int, int, int]], int]
    default_smallest: int
    legacy_smallest: int


def dense(n_in: int, n_out: int, hidden: int) -> list[nn.Module]:
    """One linear layer, or two with a SiLU between them when ``hidden`` > 0."""
    if hidden == 0:
        return [nn.Linear(n_in, n_out)]
    return [nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, n_out)]


def halvings(side: int, smallest: int) -> int:
    """How many stride-2 stages take ``side`` down to at most ``smallest`` (each stage needs an even side)."""
    n = 0
    while side > smallest and side % 2 == 0:
        side //= 2
        n += 1
    if n == 0:
        raise ValueError(f"image side {side} cannot be halved; use an even side such as 28, 32 or 64")
    return n


class StageEncoder(nn.Module):
    """(B, C, H, W) in [0, 1] -> (B, n_out): a family's convolutional ``features``, then a dense head on the
    flattened map of ``flat`` values."""

    def __init__(self, features: nn.Sequential, flat: int, n_out: int, hidden: int) -> None:
        super().__init__()
        self.features = features
        self.head = nn.Sequential(nn.Flatten(), *dense(flat, n_out, hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Centring the input makes the first layer's job easier without touching the [0, 1] contract.
        return self.head(self.features(x * 2.0 - 1.0))


class StageDecoder(nn.Module):
    """(B, D) -> (B, C, H, W) likelihood parameters: a dense ``head`` onto a (C', S, S) map of shape ``top``,
    then a family's convolutional ``features`` up to the image."""

    def __init__(self, head: nn.Sequential, top: tuple[int, int, int], features: nn.Sequential) -> None:
        super().__init__()
        self.head = head
        self.unflatten = nn.Unflatten(1, top)
        self.features = features

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.features(self.unflatten(self.head(z)))
