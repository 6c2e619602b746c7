"""Likelihoods p(x|z) as plain functions, nats per image."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from latentspace.models.posterior import LOG_2PI

LIKELIHOODS = ("bernoulli", "gaussian")


def bernoulli_nll(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) per image for Bernoulli pixels; logits, target (B, C, H, W) -> (B,) nats."""
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(1)


def gaussian_nll(mean: torch.Tensor, target: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) per image for N(mean, sigma^2) pixels; -> (B,) nats (a density: may be negative)."""
    sq = (target - mean).pow(2).flatten(1).sum(1)
    n = target[0].numel()
    return 0.5 * sq * torch.exp(-2.0 * log_sigma) + n * (log_sigma + 0.5 * LOG_2PI)
