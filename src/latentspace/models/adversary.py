"""A PatchGAN adversary on the reconstructions (``--gan W``), trained from scratch beside any family.

As in the latent-diffusion / VQGAN autoencoders (Esser et al. 2021), cut to CPU budgets:
- a PatchGAN discriminator (Isola et al. 2017): strided 4x4 convolutions whose output is a map of real/fake
  logits, one per overlapping patch, so it judges texture and edges, not the whole face;
- hinge losses (Lim & Ye 2017; Miyato et al. 2018);
- an adaptive weight: the generator term is scaled so its gradient at the decoder's last layer has the norm
  of the reconstruction loss's there, times W; the NLL's scale (nats per image, thousands at 64 px) then
  does not decide how much the adversary counts;
- a delayed start (``--gan-start`` optimiser steps): a discriminator facing blurred early reconstructions
  only learns "blurry = fake" and pushes the decoder around before it can reconstruct at all;
- DiffAugment (Zhao et al. 2020) on both real and reconstructed images when the training set has fewer than
  DIFFAUG_BELOW images: a discriminator on a few hundred photos otherwise memorises them.

The discriminator is trained in the same backward pass as the model, as FactorVAE's is: the generator term
sees its weights detached, and its own hinge loss sees the reconstructions detached. Its parameters sit in
the model's state dict and in the one optimiser (in a group of their own, Adam betas (0.5, 0.9), no weight
decay, as GANs are trained), so the checkpoint carries its weights, its optimiser state and its step count.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

GAN_START = 200  # optimiser steps before the adversary joins, by default
GAN_WIDTH = 16  # the discriminator's first channels, by default: 32 costs 3.6x a 64 px step, 16 doubles it
DIFFAUG_BELOW = 5000  # training images below which the discriminator sees DiffAugment'ed images
GAN_BETAS = (0.5, 0.9)
MAX_WEIGHT = 1e4  # the adaptive weight's ceiling, for a generator term whose gradient vanishes


def strided_layers(side: int) -> int:
    """Stride-2 layers of the discriminator for images of this side: 1 at 16-28 px, 2 at 32, 3 from 64 px."""
    return max(1, min(3, int(math.log2(side)) - 3))


class PatchDiscriminator(nn.Sequential):
    """(B, C, H, W) in [0, 1] -> (B, 1, h, w) logits, one per patch."""

    def __init__(self, channels: int, side: int, width: int) -> None:
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = width
        for i in range(strided_layers(side)):
            stride = 2 if i < strided_layers(side) - 1 else 1
            layers += [nn.Conv2d(c, 2 * c, 4, stride, 1), nn.GroupNorm(8 if 2 * c % 8 == 0 else 1, 2 * c),
                       nn.LeakyReLU(0.2)]
            c *= 2
        super().__init__(*layers, nn.Conv2d(c, 1, 4, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x * 2.0 - 1.0)


def diff_augment(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """DiffAugment's colour, translation (1/8 of the side) and cutout (half the side), each image its own draw;
    differentiable in x, so the generator's gradient passes through."""
    b, _, h, w = x.shape

    def u(*shape):
        return torch.rand(*shape, generator=generator, device=x.device, dtype=x.dtype)

    x = x + (u(b, 1, 1, 1) - 0.5)  # brightness
    mean = x.mean(1, keepdim=True)
    x = (x - mean) * (u(b, 1, 1, 1) * 2) + mean  # saturation
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * (u(b, 1, 1, 1) + 0.5) + mean  # contrast
    return _cutout(_translate(x, generator), generator)


def _translate(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    b, c, h, w = x.shape
    pad = max(1, h // 8)
    shifts = torch.randint(0, 2 * pad + 1, (2, b, 1), generator=generator, device=x.device)
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (torch.arange(h, device=x.device) + shifts[0])[:, None, :, None].expand(b, c, h, w + 2 * pad)
    x = padded.gather(2, rows)
    cols = (torch.arange(w, device=x.device) + shifts[1])[:, None, None, :].expand(b, c, h, w)
    return x.gather(3, cols)


def _cutout(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    b, _, h, w = x.shape
    corner = torch.rand(2, b, 1, generator=generator, device=x.device)
    top, left = (corner[0] * (h - h // 2 + 1)).long(), (corner[1] * (w - w // 2 + 1)).long()
    rows = torch.arange(h, device=x.device)[None, :]
    cols = torch.arange(w, device=x.device)[None, :]
    inside_r = (rows >= top) & (rows < top + h // 2)
    inside_c = (cols >= left) & (cols < left + w // 2)
    keep = ~(inside_r[:, :, None] & inside_c[:, None, :])
    return x * keep[:, None].to(x.dtype)


def adaptive_weight(loss: torch.Tensor, gan: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """||d loss / d last|| / ||d gan / d last||, detached and clamped: the generator term's weight that gives it
    the reconstruction loss's gradient norm at the decoder's last layer ``last``."""
    (g_loss,) = torch.autograd.grad(loss, last, retain_graph=True)
    (g_gan,) = torch.autograd.grad(gan, last, retain_graph=True)
    return (g_loss.norm() / (g_gan.norm() + 1e-4)).clamp(0.0, MAX_WEIGHT).detach()


class Adversary(nn.Module):
    """The discriminator and its step count (a buffer, so a resumed run starts it at the same step)."""

    def __init__(self, config) -> None:
        super().__init__()
        channels, side, _ = config.image_shape
        self.weight, self.start = float(config.gan_weight), int(config.gan_start)
        self.discriminator = PatchDiscriminator(channels, side, config.gan_width)
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))

    def terms(self, mean: torch.Tensor, x: torch.Tensor, loss: torch.Tensor, last: torch.Tensor,
              generator: torch.Generator | None, dataset_size: int) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """One training batch: (the generator term to add to ``loss``, the discriminator's hinge loss, terms to
        log). mean: the reconstructions (B, C, H, W) in [0, 1]; x: the real images; last: the decoder's last
        weight. Before the start step both are 0 and the discriminator is not run."""
        self.steps += 1
        zero = loss.new_zeros(())
        if int(self.steps) <= self.start:
            return zero, zero, {}
        augment = dataset_size < DIFFAUG_BELOW

        # One augmented draw of the fakes serves both terms: the generator's (through D's detached weights) and
        # D's own (through the detached fakes).
        shown, real_shown = (diff_augment(mean, generator), diff_augment(x, generator)) if augment else (mean, x)
        frozen = {k: v.detach() for k, v in self.discriminator.named_parameters()}
        gan = -functional_call(self.discriminator, frozen, (shown,)).float().mean()
        weight = self.weight * adaptive_weight(loss, gan, last)
        real, fake = self.discriminator(torch.cat([real_shown, shown.detach()])).float().chunk(2)
        hinge = F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
        logged = {"gan_generator": (weight * gan).detach(), "gan_weight": weight, "gan_discriminator": hinge.detach(),
                  "gan_real_share": ((real > 0).float().mean() + (fake < 0).float().mean()).detach() / 2}
        return weight * gan, hinge, logged


def last_weight(decoder: nn.Module) -> torch.Tensor:
    """The decoder's last convolution weight (or last weight matrix), where the adaptive weight is measured."""
    weights = [p for p in decoder.parameters() if p.ndim >= 2]
    return weights[-1]
