"""Likelihoods and regularisers as plain functions. Every objective changes only its regulariser."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from latentspace.models.posterior import LOG_2PI, log_normal


def bernoulli_nll(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) per image for Bernoulli pixels; logits, target (B, C, H, W) -> (B,) nats."""
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(1)


def gaussian_nll(mean: torch.Tensor, target: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) per image for N(mean, sigma^2) pixels; -> (B,) nats (a density: may be negative)."""
    sq = (target - mean).pow(2).flatten(1).sum(1)
    n = target[0].numel()
    return 0.5 * sq * torch.exp(-2.0 * log_sigma) + n * (log_sigma + 0.5 * LOG_2PI)


@dataclass(frozen=True)
class TCTerms:
    """beta-TCVAE's decomposition of the KL estimate (each the batch mean, nats): MI + TC + DWKL = KL estimate."""

    mi: torch.Tensor
    tc: torch.Tensor
    dwkl: torch.Tensor


def tc_decomposition(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, dataset_size: int) -> TCTerms:
    """Minibatch-weighted sampling estimate (Chen et al. 2018, eq. S6) of index-code MI, total correlation
    and dimension-wise KL for samples z (B, D) drawn from q(z|x) with the given mean, logvar (B, D)."""
    b = z.shape[0]
    log_qz_pairs = log_normal(z.unsqueeze(1), mean.unsqueeze(0), logvar.unsqueeze(0))  # (B, B, D)
    log_norm = math.log(b * dataset_size)
    log_qz = torch.logsumexp(log_qz_pairs.sum(2), dim=1) - log_norm
    log_prod_qzd = (torch.logsumexp(log_qz_pairs, dim=1) - log_norm).sum(1)
    log_qz_x = log_normal(z, mean, logvar).sum(1)
    log_pz = log_normal(z, torch.zeros_like(z), torch.zeros_like(z)).sum(1)
    return TCTerms(
        mi=(log_qz_x - log_qz).mean(),
        tc=(log_qz - log_prod_qzd).mean(),
        dwkl=(log_prod_qzd - log_pz).mean(),
    )


def kl_estimate(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Single-sample Monte Carlo KL(q(z|x) || p(z)), batch mean: what MI + TC + DWKL adds up to."""
    log_qz_x = log_normal(z, mean, logvar).sum(1)
    log_pz = log_normal(z, torch.zeros_like(z), torch.zeros_like(z)).sum(1)
    return (log_qz_x - log_pz).mean()
