"""'beta-vae' (Higgins et al. 2017): the KL weighted by beta. beta > 1 trades reconstruction for axes that
follow the factors; beta < 1 keeps more detail and leaves generation to a fitted prior (GMM, latent diffusion)."""
from __future__ import annotations

import torch

from latentspace.models.objectives.base import Objective


class BetaVAE(Objective):
    name = "beta-vae"
    help = "beta * KL (--beta): above 1 for axes that follow the factors, below 1 for sharper reconstructions"
    options = ("beta",)

    def regulariser(self, out, kl: torch.Tensor, dataset_size: int, generator=None):
        return self.config.beta * kl, {}
