"""'iwae' (Burda et al. 2016): trains on the importance-weighted bound with k samples per image,

    IW_k(x) = log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x),   z_i ~ q(z|x),

which equals the ELBO at k = 1 and tightens towards log p(x) as k grows. The encoder is run once and the
decoder k times, so a step costs about k times a VAE's decoding. The KL warm-up scales log p(z) - log q(z|x)
inside every weight (an annealed bound), so weight 1 is the bound itself.
"""
from __future__ import annotations

import math

import torch

from latentspace.models.objectives.base import ForwardOutput, Objective, ObjectiveTerms


def log_weights(model, x: torch.Tensor, target: torch.Tensor, k: int, generator, kl_weight: float = 1.0):
    """(log w (k, B), recon (k, B), the first sample's ForwardOutput) for k posterior samples of each image;
    log w = -recon + kl_weight * (log p(z) - log q(z|x))."""
    posterior = model.encode(x)
    z = torch.stack([posterior.sample(generator) for _ in range(k)])  # (k, B, D)
    params = model.decode_params(z.flatten(0, 1))
    recon = model.recon_nll(params, target.expand(k, *target.shape).flatten(0, 1)).view(k, -1)
    log_ratio = model.prior.log_prob(z) - posterior.log_prob(z)
    out = ForwardOutput(posterior, z[0], params[: x.shape[0]])
    return -recon + kl_weight * log_ratio, recon, out


def iw_bound(log_w: torch.Tensor) -> torch.Tensor:
    """log (1/k) sum_i w_i per image: log w (k, B) -> (B,)."""
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


class IWAE(Objective):
    name = "iwae"
    help = "importance-weighted autoencoder: trains on the IW bound with --k samples (k = 1 is the VAE)"
    options = ("k",)

    def loss_terms(self, model, x, target, generator, kl_weight, dataset_size):
        log_w, recon, out = log_weights(model, x, target, self.config.k, generator, kl_weight)
        bound = iw_bound(log_w).mean()
        kl = model.prior.kl(out.posterior, out.z).mean()
        # The weights' normalised share: how many samples the bound really rests on (k when all agree, 1 when one wins).
        ess = (1.0 / torch.softmax(log_w.detach(), dim=0).pow(2).sum(0)).mean()
        return ObjectiveTerms(out, recon[0].mean(), kl, -bound, {"iw_bound": bound, "effective_samples": ess})
