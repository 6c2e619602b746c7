"""Models: configuration, the encoder/decoder families (nets), posteriors, priors, likelihoods, objectives,
detail terms, save/load. Each kind has one registry: ARCHS, OBJECTIVES, LIKELIHOODS, DETAIL_TERMS."""
from __future__ import annotations

from latentspace.models.autoencoder import Autoencoder, ForwardOutput, LossOutput
from latentspace.models.config import ModelConfig, default_likelihood
from latentspace.models.detail import DETAIL_TERMS
from latentspace.models.io import load_model, read_model_config, save_model
from latentspace.models.likelihoods import LIKELIHOODS
from latentspace.models.nets import ARCHS
from latentspace.models.objectives import OBJECTIVES
from latentspace.models.posterior import DiagonalGaussian, PointMass
from latentspace.models.priors import StandardNormal


def build(config: ModelConfig) -> Autoencoder:
    """A fresh model for ``config`` (weights from torch's default initialisation under the caller's seed)."""
    return Autoencoder(config)


__all__ = [
    "Autoencoder", "ForwardOutput", "LossOutput", "ModelConfig", "OBJECTIVES", "LIKELIHOODS", "ARCHS",
    "DETAIL_TERMS", "DiagonalGaussian", "PointMass", "StandardNormal", "build", "save_model", "load_model", "read_model_config",
    "default_likelihood",
]
