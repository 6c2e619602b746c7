"""'factor-vae' (Kim & Mnih 2018): the ELBO plus beta times the total correlation, estimated by a
discriminator D that tells codes z ~ q(z) from codes whose axes were shuffled across the batch (samples of
prod_j q(z_j)): TC ~ E[log D(z) / (1 - D(z))], the density-ratio trick.

The discriminator is trained in the same backward pass as the model, with no second optimiser to checkpoint:
the VAE's term sees D's weights detached (its gradient reaches the encoder alone) and D's own loss sees the
codes detached (its gradient reaches D alone). Resume is then exact with nothing new to save.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from latentspace.models.objectives.base import Objective, ObjectiveTerms

DISCRIMINATOR_WIDTH, DISCRIMINATOR_DEPTH = 512, 4  # the paper: 1000 x 6; this is as good on 10-D codes here


def permute_dims(z: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Each axis of z (B, D) shuffled across the batch independently: a sample of the product of marginals."""
    b, d = z.shape
    order = torch.argsort(torch.rand(b, d, generator=generator, device=z.device), dim=0)
    return torch.gather(z, 0, order)


def discriminator(latent_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = latent_dim
    for _ in range(DISCRIMINATOR_DEPTH):
        layers += [nn.Linear(width, DISCRIMINATOR_WIDTH), nn.LeakyReLU(0.2)]
        width = DISCRIMINATOR_WIDTH
    return nn.Sequential(*layers, nn.Linear(width, 2))  # logits of (joint, product of marginals)


class FactorVAE(Objective):
    name = "factor-vae"
    help = "FactorVAE: the ELBO + --beta * total correlation, estimated by a discriminator on shuffled codes"
    options = ("beta",)

    def __init__(self, config) -> None:
        super().__init__(config)
        self.discriminator = discriminator(config.latent_dim)

    def loss_terms(self, model, x, target, generator, kl_weight, dataset_size):
        t = super().loss_terms(model, x, target, generator, kl_weight, dataset_size)
        z = t.out.z.detach()
        logits = torch.cat([self.discriminator(z), self.discriminator(permute_dims(z, generator))]).float()
        labels = torch.cat([torch.zeros(len(z)), torch.ones(len(z))]).long().to(z.device)
        aux = nn.functional.cross_entropy(logits, labels)
        accuracy = (logits.argmax(1) == labels).float().mean()
        return ObjectiveTerms(t.out, t.recon, t.kl, t.loss, {**t.terms, "discriminator": aux.detach(),
                                                            "discriminator_accuracy": accuracy}, aux)

    def regulariser(self, out, kl, dataset_size, generator=None):
        frozen = {k: v.detach() for k, v in self.discriminator.named_parameters()}
        logits = functional_call(self.discriminator, frozen, (out.z,)).float()
        tc = (logits[:, 0] - logits[:, 1]).mean()
        return kl + self.config.beta * tc, {"tc": tc}
