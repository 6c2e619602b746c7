"""'wae-mmd' (Tolstikhin et al. 2018): the Wasserstein autoencoder. A deterministic encoder, and instead of
a KL per image an MMD that pulls the codes of the whole batch (the aggregate posterior) towards N(0, I), so
codes need not overlap to match the prior."""
from __future__ import annotations

from latentspace.models.objectives.base import Objective
from latentspace.models.objectives.mmd import mmd, prior_draws


class WAE(Objective):
    name = "wae-mmd"
    help = "Wasserstein autoencoder: deterministic codes, --mmd-weight * MMD(codes, N(0, I)) (IMQ kernel)"
    variational = False
    options = ("mmd_weight",)

    def regulariser(self, out, kl, dataset_size, generator=None):
        value = mmd(out.z, prior_draws(out.z, generator))
        return self.config.mmd_weight * value, {"mmd": value}
