"""'plain': stride-2 convolutions down to a small feature map, then dense layers; no normalisation.

The number of stages follows the image side (28 -> 14 -> 7, 32 -> 16 -> 8 -> 4, 64 -> ... -> 4). It is the
fastest family to a given MNIST test ELBO on 2 CPU cores that we measured (benchmarks/time_to_quality.py):
small conv channels are what CPUs run slowest per FLOP, and this family has few of them. On RGB faces at 64 px
it also reaches a given PSNR in less CPU time than 'resnet' (benchmarks/picture_quality.py).
"""
from __future__ import annotations

from torch import nn

from latentspace.models.nets.base import Arch, StageDecoder, StageEncoder, dense, halvings

# The side down to which the stride-2 stages halve the image (the map the dense head reads). A larger map
# gives sharper reconstructions per CPU-second, and worse interpolations: on RGB faces at 64 px (width 32,
# 5 epochs, benchmarks/picture_quality.py, same day) a 16x16 map reached 31.7 dB and SSIM 0.939 against 31.1 dB
# and 0.929 for 4x4, in about three quarters of the time per epoch, but the middle frames of latent paths fell
# onto the real manifold 0.48-0.63 of the time instead of 0.74-0.79 (a pixel cross-fade's: 0.35); 8x8 sat
# between (31.9 dB, 0.62-0.64). Latent paths that stay on the manifold are the point, so the default keeps
# 7 (-> 4x4 from 32 px, 7x7 at 28 px), which runs saved before the setting also used; --smallest-side 16 is
# the sharper choice for reconstruction alone.
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
    n = halvings(config.image_shape[1], config.smallest_side)
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
    default_smallest=SMALLEST_SIDE,
    legacy_smallest=SMALLEST_SIDE,
)
