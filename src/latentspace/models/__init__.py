"""Models: configuration, posteriors, the conv encoder/decoder family, objectives, save/load."""
from __future__ import annotations

from latentspace.models.autoencoder import Autoencoder, ForwardOutput, LossOutput
from latentspace.models.config import LIKELIHOODS, OBJECTIVES, ModelConfig, default_likelihood
from latentspace.models.io import load_model, read_model_config, save_model
from latentspace.models.posterior import DiagonalGaussian, PointMass


def build(config: ModelConfig) -> Autoencoder:
    """A fresh model for ``config`` (weights from torch's default initialisation under the caller's seed)."""
    return Autoencoder(config)


__all__ = [
    "Autoencoder", "ForwardOutput", "LossOutput", "ModelConfig", "OBJECTIVES", "LIKELIHOODS",
    "DiagonalGaussian", "PointMass", "build", "save_model", "load_model", "read_model_config",
    "default_likelihood",
]
