"""'plain': stride-2 convolutions until the feature map is small, then dense layers; no normalisation.

The number of stages follows the image side (28 -> 14 -> 7, 32 -> 16 -> 8 -> 4, 64 -> ... -> 4). It is the
fastest family to a given MNIST test ELBO on 2 CPU cores that we measured (benchmarks/time_to_quality.py):
small conv channels are what CPUs run slowest per FLOP, and this family has few of them. On RGB faces at 64 px
it also reaches a given PSNR in less CPU time than 'resnet' (benchmarks/picture_quality.py).
"""
from __future__ import annotations

from torch import nn

from latentspace.models.nets.base import Arch, StageDecoder, StageEncoder, dense, halvings

SMALLEST_SIDE = 7
# Width 16 is the fastest to a given MNIST ELBO (benchmarks/time_to_quality.py); on RGB faces at 64 px
# (12,288 values an image) width 32 reaches a given PSNR in half the CPU time of width 16, and width 64 is
# slower again (benchmarks/picture_quality.py). Smaller images (RGB 32 px, grey 64 px: 3,072 and 4,096
# values) are not measured at width 32 and keep 16.
WIDE_FROM_VALUES = 3 * 64 * 64


def default_width(image_shape: tuple[int, int, int]) -> int:
    c, h, w = image_shape
    return 32 if c * h * w >= WIDE_FROM_VALUES else 16


def stage_plan(config) -> tuple[list[int], int]:
    """Channels after each stride-2 stage and the final feature-map side."""
    n = halvings(config.image_shape[1], SMALLEST_SIDE)
    channels = [min(config.width * 2**i, config.width * 8) for i in range(n)]
    return channels, config.image_shape[1] // 2**n


def encoder(config, n_out: int) -> StageEncoder:
    channels, side = stage_plan(config)
    layers: list[nn.Module] = []
    c_in = config.image_shape[0]
    for c in channels:
        layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.SiLU()]
        c_in = c
    return StageEncoder(nn.Sequential(*layers), c_in * side * side, n_out, config.hidden)


def decoder(config) -> StageDecoder:
    channels, side = stage_plan(config)
    c_top = channels[-1]
    head = nn.Sequential(*dense(config.latent_dim, c_top * side * side, config.hidden), nn.SiLU())
    layers: list[nn.Module] = []
    outs = list(reversed(channels[:-1])) + [config.image_shape[0]]
    c_in = c_top
    for i, c in enumerate(outs):
        layers.append(nn.ConvTranspose2d(c_in, c, 4, stride=2, padding=1))
        if i < len(outs) - 1:
            layers.append(nn.SiLU())
        c_in = c
    return StageDecoder(head, (c_top, side, side), nn.Sequential(*layers))


PLAIN = Arch(
    name="plain",
    help="stride-2 convolutions and dense layers, no normalisation: fastest on MNIST-sized ink",
    encoder=encoder,
    decoder=decoder,
    default_width=default_width,
)
