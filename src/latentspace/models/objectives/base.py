"""What every objective shares: the ELBO's two terms, and one hook for the regulariser that sets it apart.

An objective is an ``nn.Module`` so that families with learned parts of their own (a discriminator, pseudo-
inputs) keep them in the model's state dict, checkpoints and all, with nothing else to change.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:  # the model calls the objective; the objective only reads what the model hands it
    from latentspace.models.autoencoder import ForwardOutput
    from latentspace.models.config import ModelConfig


class Objective(nn.Module):
    """One family's regulariser. Subclasses set ``name`` (the ``--model`` choice), ``help`` (one line for
    ``--help``), ``variational`` (False: the encoder returns a point mass) and ``options`` (the ModelConfig
    fields the family reads, so the CLI can say which flags apply)."""

    name: ClassVar[str]
    help: ClassVar[str]
    variational: ClassVar[bool] = True
    options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: "ModelConfig") -> None:
        super().__init__()
        self.config = config

    def regulariser(
        self, out: "ForwardOutput", kl: torch.Tensor, dataset_size: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The batch's regulariser (0-d, nats per image, before the KL warm-up weight) and any extra terms to
        log. kl: the batch mean of KL(q(z|x) || p(z)). The default is the ELBO's own: the KL."""
        return kl, {}
