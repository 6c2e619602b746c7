"""'beta-tcvae' (Chen et al. 2018): the KL split into index-code MI, total correlation and dimension-wise KL,
each with its own weight (alpha, beta, gamma); beta on the total correlation alone pushes the axes apart."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from latentspace.models.objectives.base import Objective
from latentspace.models.posterior import log_normal


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


class BetaTCVAE(Objective):
    name = "beta-tcvae"
    help = "alpha * MI + beta * total correlation + gamma * dimension-wise KL (--alpha, --beta, --gamma)"
    options = ("alpha", "beta", "gamma")

    def regulariser(self, out, kl: torch.Tensor, dataset_size: int, generator=None):
        c, post = self.config, out.posterior
        tc = tc_decomposition(out.z, post.mean, post.logvar, dataset_size)
        terms = {"mi": tc.mi, "tc": tc.tc, "dwkl": tc.dwkl, "kl_estimate": kl_estimate(out.z, post.mean, post.logvar)}
        return c.alpha * tc.mi + c.beta * tc.tc + c.gamma * tc.dwkl, terms
