"""What every objective shares, and the hooks by which a family sets itself apart.

An objective is an ``nn.Module`` so that families with learned parts of their own (a discriminator, the
top-down nets of a hierarchy, a codebook) keep them in the model's state dict, checkpoints and all.

Hooks, each with the ELBO's plain behaviour as the default:
- ``encoder_outputs`` / ``posterior(h)``: what the encoder's head emits and how it becomes q(z|x);
- ``make_prior(encode)``: p(z), what the KL, the IW bound and ``sample`` use;
- ``loss_terms``: the training loss of a batch (IWAE overrides it whole); by default reconstruction plus
  ``regulariser(...)`` weighted by the KL warm-up;
- ``regulariser``: the term most families change.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from latentspace.models.posterior import DiagonalGaussian, PointMass
from latentspace.models.priors import Prior, StandardNormal

if TYPE_CHECKING:  # the model calls the objective; the objective only reads what the model hands it
    from latentspace.models.autoencoder import Autoencoder
    from latentspace.models.config import ModelConfig


@dataclass(frozen=True)
class ForwardOutput:
    posterior: object  # DiagonalGaussian, PointMass or a family's own (hierarchical, quantised)
    z: torch.Tensor  # (B, D), the code the decoder saw
    params: torch.Tensor  # (B, C, H, W) likelihood parameters (logits or pre-sigmoid means)


@dataclass(frozen=True)
class ObjectiveTerms:
    """A batch under one objective (0-d batch means, nats per image). loss: what the optimiser minimises
    before detail terms; recon, kl: the ELBO's two terms; aux: a loss of the family's own adversary (trained
    on detached codes, so its gradient reaches the adversary alone), or None."""

    out: ForwardOutput
    recon: torch.Tensor
    kl: torch.Tensor
    loss: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    aux: torch.Tensor | None = None


class Objective(nn.Module):
    """One family. Subclasses set ``name`` (the ``--model`` choice), ``help`` (one line for ``--help``),
    ``variational`` (False: the posterior has no density, so no KL and no IW bound) and ``options`` (the
    ModelConfig fields the family reads, so the CLI can say which flags apply)."""

    name: ClassVar[str]
    help: ClassVar[str]
    variational: ClassVar[bool] = True
    options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: "ModelConfig") -> None:
        super().__init__()
        self.config = config

    @classmethod
    def check(cls, config: "ModelConfig") -> None:
        """Refuse settings this family cannot use (ValueError naming the ModelConfig field); ModelConfig's
        validation calls it."""

    def encoder_outputs(self) -> int:
        d = self.config.latent_dim
        return 2 * d if self.variational else d

    def posterior(self, h: torch.Tensor):
        """The encoder head's output h (B, encoder_outputs()) -> q(z|x)."""
        if not self.variational:
            return PointMass(h)
        mean, logvar = h.chunk(2, dim=1)
        return DiagonalGaussian(mean, logvar)

    def make_prior(self, encode: Callable[[torch.Tensor], object]) -> Prior:
        """p(z). ``encode`` is the model's encoder, for priors defined through it (the VampPrior)."""
        return StandardNormal(self.config.latent_dim)

    def loss_terms(
        self, model: "Autoencoder", x: torch.Tensor, target: torch.Tensor, generator: torch.Generator | None,
        kl_weight: float, dataset_size: int,
    ) -> ObjectiveTerms:
        """The batch x (B, C, H, W) in [0, 1] scored against ``target`` (x, or its binarised draw)."""
        out = model(x, generator)
        recon = model.recon_nll(out.params, target).mean()
        kl = model.prior.kl(out.posterior, out.z).mean()
        reg, terms = self.regulariser(out, kl, dataset_size, generator)
        return ObjectiveTerms(out, recon, kl, recon + kl_weight * reg, terms)

    def regulariser(
        self, out: ForwardOutput, kl: torch.Tensor, dataset_size: int, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The batch's regulariser (0-d, nats per image, before the KL warm-up weight) and any extra terms to
        log. kl: the batch mean of KL(q(z|x) || p(z)). The default is the ELBO's own: the KL."""
        return kl, {}
