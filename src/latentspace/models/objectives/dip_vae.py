"""'dip-vae-i' and 'dip-vae-ii' (Kumar et al. 2018): the ELBO plus a penalty that moments of the aggregate
posterior match N(0, I)'s identity covariance,

    lambda_od * sum_{i != j} Cov_ij^2 + lambda_d * sum_i (Cov_ii - 1)^2,

with Cov the covariance of the posterior means over the batch (I), or of the aggregate posterior itself,
that plus the mean posterior variance (II). lambda_od is --dip-weight; lambda_d is 10x it for I and equal to
it for II, as in the paper and disentanglement_lib."""
from __future__ import annotations

import torch

from latentspace.models.objectives.base import Objective


def covariance(mean: torch.Tensor) -> torch.Tensor:
    """The batch covariance (D, D) of rows (B, D) (divided by B, the moment estimate the paper uses)."""
    centred = mean - mean.mean(0, keepdim=True)
    return centred.T @ centred / mean.shape[0]


def dip_penalty(cov: torch.Tensor, lambda_od: float, lambda_d: float) -> torch.Tensor:
    diag = cov.diagonal()
    off = cov - torch.diag(diag)
    return lambda_od * off.pow(2).sum() + lambda_d * (diag - 1.0).pow(2).sum()


class DIPVAEI(Objective):
    name = "dip-vae-i"
    help = "DIP-VAE I: the ELBO + --dip-weight * decorrelation of the posterior means (Cov -> I)"
    options = ("dip_weight",)
    diagonal_factor = 10.0

    def aggregate_covariance(self, posterior) -> torch.Tensor:
        return covariance(posterior.mean)

    def regulariser(self, out, kl, dataset_size, generator=None):
        w = self.config.dip_weight
        penalty = dip_penalty(self.aggregate_covariance(out.posterior), w, self.diagonal_factor * w)
        return kl + penalty, {"dip": penalty}


class DIPVAEII(DIPVAEI):
    name = "dip-vae-ii"
    help = "DIP-VAE II: as I, on the aggregate posterior's covariance (Cov of means + mean variance)"
    diagonal_factor = 1.0

    def aggregate_covariance(self, posterior) -> torch.Tensor:
        return covariance(posterior.mean) + torch.diag(posterior.logvar.exp().mean(0))
