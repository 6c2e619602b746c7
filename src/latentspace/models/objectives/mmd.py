"""The maximum mean discrepancy between codes and prior draws, with the inverse multiquadratic kernel that
Tolstikhin et al. (2018) found to work in latent space, k(x, y) = C / (C + |x - y|^2), summed over a range
of scales C around 2 D (the expected squared distance of two N(0, I) draws). Shared by 'wae-mmd' and 'info-vae'."""
from __future__ import annotations

import torch

SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def imq_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum over SCALES of C / (C + |a_i - b_j|^2) for a (N, D), b (M, D) -> (N, M)."""
    d2 = torch.cdist(a, b).pow(2)
    base = 2.0 * a.shape[1]
    return sum(c * base / (c * base + d2) for c in SCALES)


def mmd(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The unbiased estimate of MMD^2 between samples x (N, D) and y (M, D), N, M >= 2: 0 in expectation when
    both come from one distribution (so it can come out slightly negative), growing as they part."""
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"the MMD needs at least 2 samples on each side, got {n} and {m}")
    kxx, kyy, kxy = imq_kernel(x, x), imq_kernel(y, y), imq_kernel(x, y)
    within_x = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    within_y = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return within_x + within_y - 2.0 * kxy.mean()


def prior_draws(z: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """As many N(0, I) draws as the batch has codes, from the step's generator (so resume replays them)."""
    return torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
