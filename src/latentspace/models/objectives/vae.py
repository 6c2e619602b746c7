"""'vae': the variational autoencoder (Kingma & Welling 2014), reconstruction + KL, the plain ELBO."""
from __future__ import annotations

from latentspace.models.objectives.base import Objective


class VAE(Objective):
    name = "vae"
    help = "variational autoencoder: maximises the ELBO (reconstruction + KL to N(0, I))"
