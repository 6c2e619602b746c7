"""The pixel-space baseline of benchmarks/latent_vs_pixel.py: a compact U-Net DDPM trained directly on pixels.

It exists only here, as the comparison the talk's last claim needs, not as a product feature. It shares the
noise schedule, the loss and the sampler with latentspace's latent diffusion prior (latent.diffusion), so the
two differ only in where they diffuse: 784 or 3,072 pixel values against 16 latent values.

U-Net: a 3x3 conv to ``width`` channels, two resolutions down (stride-2 convs, width -> 2 width -> 2 width), two
up (nearest upsampling + conv, skip connections by concatenation), a residual block with GroupNorm, SiLU and
the time embedding at every level. About 0.1 M parameters at width 16, 0.5 M at width 32.
"""
from __future__ import annotations

import copy
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from latentspace.latent.diffusion import TIME_FEATURES, cosine_alpha_bar, ddim_sample, diffusion_step, time_embedding

TIMESTEPS = 1000


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, t_dim: int) -> None:
        super().__init__()
        self.n1, self.c1 = nn.GroupNorm(min(8, c_in), c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.t = nn.Linear(t_dim, c_out)
        self.n2, self.c2 = nn.GroupNorm(min(8, c_out), c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.silu(self.n1(x))) + self.t(t)[:, :, None, None]
        return self.skip(x) + self.c2(F.silu(self.n2(h)))


class UNet(nn.Module):
    """eps_theta(x_t, t) for images (B, C, H, W) in [-1, 1] with H, W divisible by 4."""

    def __init__(self, channels: int, width: int = 32) -> None:
        super().__init__()
        w1, w2, td = width, 2 * width, 4 * width
        self.time = nn.Sequential(nn.Linear(TIME_FEATURES, td), nn.SiLU(), nn.Linear(td, td))
        self.inp = nn.Conv2d(channels, w1, 3, padding=1)
        self.d1, self.down1 = ResBlock(w1, w1, td), nn.Conv2d(w1, w1, 3, stride=2, padding=1)
        self.d2, self.down2 = ResBlock(w1, w2, td), nn.Conv2d(w2, w2, 3, stride=2, padding=1)
        self.mid = ResBlock(w2, w2, td)
        self.u2 = ResBlock(2 * w2, w2, td)
        self.u1 = ResBlock(w2 + w1, w1, td)
        self.out = nn.Sequential(nn.GroupNorm(8, w1), nn.SiLU(), nn.Conv2d(w1, channels, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        e = self.time(time_embedding(t, TIMESTEPS))
        h1 = self.d1(self.inp(x), e)  # H
        h2 = self.d2(self.down1(h1), e)  # H/2
        m = self.mid(self.down2(h2), e)  # H/4
        u = self.u2(torch.cat([F.interpolate(m, scale_factor=2.0), h2], 1), e)
        u = self.u1(torch.cat([F.interpolate(u, scale_factor=2.0), h1], 1), e)
        return self.out(u)


class PixelDDPM:
    """Train for a wall-clock budget, then sample uint8 images."""

    def __init__(self, image_shape: tuple[int, int, int], width: int = 32, batch_size: int = 64, lr: float = 1e-3,
                 ema: float = 0.999, seed: int = 0) -> None:
        self.image_shape, self.batch_size, self.lr, self.ema, self.seed = image_shape, batch_size, lr, ema, seed
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = UNet(image_shape[0], width)
        self.ema_net = copy.deepcopy(self.net).requires_grad_(False)
        self.steps_ = 0
        self.seconds_ = 0.0

    def fit(self, images: np.ndarray, seconds: float) -> "PixelDDPM":
        """Train on uint8 images (N, C, H, W) until ``seconds`` of wall time have passed."""
        data = torch.from_numpy(images).float() / 127.5 - 1.0
        gen = torch.Generator().manual_seed(self.seed)
        optimizer = torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=0.0)
        alpha_bar = cosine_alpha_bar(TIMESTEPS).float()
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            idx = torch.randint(0, len(data), (self.batch_size,), generator=gen)
            self.loss_ = float(diffusion_step(self.net, optimizer, data[idx], alpha_bar, gen))
            with torch.no_grad():
                for pe, p in zip(self.ema_net.parameters(), self.net.parameters()):
                    pe.lerp_(p, 1.0 - self.ema)
            self.steps_ += 1
        self.seconds_ = time.perf_counter() - start
        return self

    def sample(self, n: int, seed: int, steps: int = 100, batch: int = 500) -> np.ndarray:
        """uint8 (n, C, H, W) by the same DDIM sampler as the latent prior (eta 1), ``steps`` steps."""
        gen = np.random.default_rng(seed)
        parts = [ddim_sample(self.ema_net.eval(), (min(batch, n - i), *self.image_shape), gen, TIMESTEPS, steps,
                             eta=1.0, x0_limit=1.0) for i in range(0, n, batch)]
        x = np.concatenate(parts)
        return np.clip(np.rint((x + 1.0) * 127.5), 0, 255).astype(np.uint8)
