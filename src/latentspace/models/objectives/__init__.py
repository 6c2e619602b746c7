"""The objectives, one family per file, registered by name in OBJECTIVES: the one table that the CLI's
``--model`` choices and ``--help``, and ModelConfig's validation, all read. A new family is one new file and
one entry here."""
from __future__ import annotations

from latentspace.models.objectives.ae import Autoencoding
from latentspace.models.objectives.base import Objective
from latentspace.models.objectives.beta_tcvae import BetaTCVAE
from latentspace.models.objectives.beta_vae import BetaVAE
from latentspace.models.objectives.vae import VAE

OBJECTIVES: dict[str, type[Objective]] = {cls.name: cls for cls in (Autoencoding, VAE, BetaVAE, BetaTCVAE)}


def objective_help() -> str:
    """One line per family, for ``--help``."""
    return "; ".join(f"{name}: {cls.help}" for name, cls in OBJECTIVES.items())


__all__ = ["OBJECTIVES", "Objective", "objective_help"]
