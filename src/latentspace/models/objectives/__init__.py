"""The objectives, one family per file, registered by name in OBJECTIVES: the one table that the CLI's
``--model`` choices and ``--help``, and ModelConfig's validation, all read. A new family is one new file and
one entry here."""
from __future__ import annotations

from latentspace.models.objectives.ae import Autoencoding
from latentspace.models.objectives.base import ForwardOutput, Objective, ObjectiveTerms
from latentspace.models.objectives.beta_tcvae import BetaTCVAE
from latentspace.models.objectives.beta_vae import BetaVAE
from latentspace.models.objectives.dip_vae import DIPVAEI, DIPVAEII
from latentspace.models.objectives.factor_vae import FactorVAE
from latentspace.models.objectives.hvae import HVAE
from latentspace.models.objectives.info_vae import InfoVAE
from latentspace.models.objectives.iwae import IWAE
from latentspace.models.objectives.vae import VAE
from latentspace.models.objectives.vamp import Vamp
from latentspace.models.objectives.vq_vae import VQVAE
from latentspace.models.objectives.wae import WAE

OBJECTIVES: dict[str, type[Objective]] = {cls.name: cls for cls in (
    Autoencoding, VAE, BetaVAE, BetaTCVAE, IWAE, Vamp, WAE, InfoVAE, FactorVAE, DIPVAEI, DIPVAEII, VQVAE, HVAE,
)}


def objective_help() -> str:
    """One line per family, for ``--help``."""
    return "; ".join(f"{name}: {cls.help}" for name, cls in OBJECTIVES.items())


def families_reading(field: str) -> list[str]:
    """The families whose ``options`` name a ModelConfig field (for ``--help`` and for refusing a flag that
    the chosen family would ignore)."""
    return [name for name, cls in OBJECTIVES.items() if field in cls.options]


__all__ = ["OBJECTIVES", "ForwardOutput", "Objective", "ObjectiveTerms", "families_reading", "objective_help"]
