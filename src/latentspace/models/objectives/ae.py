"""'ae': the deterministic autoencoder, the baseline every generative objective is compared with."""
from __future__ import annotations

from latentspace.models.objectives.base import Objective


class Autoencoding(Objective):
    name = "ae"
    help = "deterministic autoencoder: a point-mass code, reconstruction only (no KL, no density)"
    variational = False
    # regulariser: the default KL, which a point mass makes 0
