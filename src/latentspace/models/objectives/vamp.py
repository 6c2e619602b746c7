"""'vamp' (Tomczak & Welling 2018): the VampPrior, p(z) = (1/K) sum_k q(z | u_k), a mixture of the encoder's
own posteriors at K learned pseudo-inputs u_k. The KL has no closed form: it is estimated at the posterior's
sample (log q(z|x) - log p(z)); sampling picks a component, then draws from it; the IW bound uses log p(z)."""
from __future__ import annotations

import torch
from torch import nn

from latentspace.models.objectives.base import Objective
from latentspace.models.priors import Prior, mixture_log_prob


class VampPrior(Prior):
    """K pseudo-inputs (K, C, H, W), kept as logits so that the images the encoder sees stay in [0, 1]."""

    title = "VampPrior"

    def __init__(self, latent_dim: int, image_shape: tuple[int, int, int], components: int, encode) -> None:
        super().__init__(latent_dim)
        # Near-grey starting images (sigmoid of small noise): every component starts near the average code.
        self.pseudo = nn.Parameter(0.1 * torch.randn(components, *image_shape))
        self._encode = encode

    def components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The mixture's means and log-variances (K, D)."""
        post = self._encode(torch.sigmoid(self.pseudo))
        return post.mean, post.logvar

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        means, logvars = self.components()
        return mixture_log_prob(z.float(), means, logvars)

    def sample(self, n: int, generator: torch.Generator | None = None, device: str | torch.device = "cpu"):
        means, logvars = self.components()
        k = torch.randint(0, means.shape[0], (n,), generator=generator, device=means.device)
        eps = torch.randn(n, self.latent_dim, generator=generator, device=means.device)
        return (means[k] + torch.exp(0.5 * logvars[k]) * eps).to(device)


class Vamp(Objective):
    name = "vamp"
    help = "VAE with the VampPrior: a mixture of the posteriors at --pseudo-inputs learned images"
    options = ("pseudo_inputs",)

    def make_prior(self, encode) -> Prior:
        c = self.config
        return VampPrior(c.latent_dim, c.image_shape, c.pseudo_inputs, encode)
