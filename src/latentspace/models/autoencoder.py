"""Autoencoder: an encoder/decoder family (models.nets), a posterior, a prior and one objective (models.objectives).

The model owns what every family shares (encode, decode, the likelihood, the ELBO); the objective owns what sets
its family apart (how the head becomes a posterior, the prior, the training loss), and optional detail terms
(models.detail) join the loss, never the ELBO.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from latentspace.models.adversary import Adversary, last_weight
from latentspace.models.config import ModelConfig
from latentspace.models.detail import detail_loss
from latentspace.models.likelihoods import bernoulli_nll, gaussian_nll
from latentspace.models.nets import ARCHS
from latentspace.models.objectives import OBJECTIVES
from latentspace.models.objectives.base import ForwardOutput
from latentspace.models.posterior import DiagonalGaussian, PointMass


@dataclass(frozen=True)
class LossOutput:
    """Batch means, nats per image. ``loss`` is minimised; ``elbo`` is always the plain ELBO (higher is better).
    aux: the loss of a family's adversary (FactorVAE's discriminator), minimised in the same backward pass
    (its gradient reaches the adversary alone), or None."""

    loss: torch.Tensor
    recon_nll: torch.Tensor
    kl: torch.Tensor
    elbo: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    aux: torch.Tensor | None = None


class Autoencoder(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        arch, objective = ARCHS[config.arch], OBJECTIVES[config.objective](config)
        self.encoder = arch.encoder(config, objective.encoder_outputs())
        self.decoder = arch.decoder(config)
        self.prior = objective.make_prior(self.encode)
        self.objective = objective
        self.adversary = Adversary(config) if config.gan_weight > 0 else None
        learn_sigma = config.likelihood == "gaussian" and config.sigma is None
        self.log_sigma = nn.Parameter(torch.tensor(-1.0)) if learn_sigma else None

    # -- the latent API -------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> DiagonalGaussian | PointMass:
        """x: (B, C, H, W) float in [0, 1] -> posterior over z (B, D)."""
        self._check_images(x)
        # Under autocast the head gives bf16: the KL and noise want fp32.
        return self.objective.posterior(self.encoder(x).float())

    def decode_params(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, D) -> likelihood parameters (B, C, H, W): Bernoulli logits or pre-sigmoid Gaussian means."""
        if z.ndim != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(f"latent has shape {tuple(z.shape)}, model expects (B, {self.config.latent_dim})")
        return self.decoder(z).float()  # a bf16 sum over thousands of pixels would lose whole nats

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, D) -> images (B, C, H, W) in [0, 1], the likelihood's mean."""
        return torch.sigmoid(self.decode_params(z))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> ForwardOutput:
        posterior = self.encode(x)
        z = posterior.sample(generator)
        return ForwardOutput(posterior, z, self.decode_params(z))

    # -- the objective --------------------------------------------------------------------------
    def recon_nll(self, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """-log p(x|z) per image (B,), nats."""
        if self.config.likelihood == "bernoulli":
            return bernoulli_nll(params, target)
        return gaussian_nll(torch.sigmoid(params), target, self.log_sigma_value(params))

    def log_sigma_value(self, like: torch.Tensor) -> torch.Tensor:
        if self.log_sigma is not None:
            return self.log_sigma
        return torch.tensor(float(self.config.sigma), device=like.device).log()

    def targets(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Dynamic binarisation (a fresh Bernoulli draw of each pixel) in training when configured."""
        if self.config.binarize and self.training:
            return torch.bernoulli(x, generator=generator)
        return x

    def loss(
        self,
        x: torch.Tensor,
        generator: torch.Generator | None = None,
        kl_weight: float = 1.0,
        dataset_size: int | None = None,
    ) -> LossOutput:
        """The training objective on a batch x (B, C, H, W) in [0, 1]; kl_weight scales the regulariser (warm-up)."""
        t = self.objective.loss_terms(self, x, self.targets(x, generator), generator, kl_weight,
                                      dataset_size or x.shape[0])
        out, loss, terms, aux = t.out, t.loss, t.terms, t.aux
        weights = {name: w for name, w in self.config.detail_weights.items() if w > 0}
        if weights:  # off by default: the training step's hot path pays nothing for them
            details = detail_loss(weights, torch.sigmoid(out.params), x)
            loss = loss + sum(details.values())
            terms = {**terms, **{f"detail_{name}": value for name, value in details.items()}}
        if self.adversary is not None and self.training:  # evaluation scores the ELBO's terms alone
            gan, hinge, logged = self.adversary.terms(torch.sigmoid(out.params), x, loss, last_weight(self.decoder),
                                                      generator, dataset_size or x.shape[0])
            loss, aux, terms = loss + gan, hinge if aux is None else aux + hinge, {**terms, **logged}
        return LossOutput(loss=loss, recon_nll=t.recon, kl=t.kl, elbo=-(t.recon + t.kl), terms=terms, aux=aux)

    def elbo(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Per-image ELBO (B,), nats, one posterior sample; no binarisation (scores the given pixels)."""
        out = self(x, generator)
        return -(self.recon_nll(out.params, x) + self.prior.kl(out.posterior, out.z))

    def _check_images(self, x: torch.Tensor) -> None:
        expected = self.config.image_shape
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            got = "x".join(str(s) for s in x.shape[1:]) if x.ndim == 4 else str(tuple(x.shape))
            raise ValueError(
                f"images have shape {got} (C x H x W), model expects {'x'.join(map(str, expected))}; "
                "resize them or train a model for this size"
            )
