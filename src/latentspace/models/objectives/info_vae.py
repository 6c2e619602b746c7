"""'info-vae' (Zhao et al. 2019, the MMD-VAE): the ELBO plus an MMD between the batch's codes and N(0, I)
(alpha = 0, lambda = 1 + --mmd-weight in the paper's terms): the MMD keeps the aggregate posterior on the
prior even where a strong decoder would let the KL push the codes to ignore the image."""
from __future__ import annotations

from latentspace.models.objectives.base import Objective
from latentspace.models.objectives.mmd import mmd, prior_draws


class InfoVAE(Objective):
    name = "info-vae"
    help = "InfoVAE (MMD-VAE): the ELBO + --mmd-weight * MMD(codes, N(0, I)) on the batch (IMQ kernel)"
    options = ("mmd_weight",)

    def regulariser(self, out, kl, dataset_size, generator=None):
        value = mmd(out.z, prior_draws(out.z, generator))
        return kl + self.config.mmd_weight * value, {"mmd": value}
