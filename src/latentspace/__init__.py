"""latentspace: learn the latent space of a set of images, then see it, measure it and use it."""
from __future__ import annotations

__version__ = "0.1.0"

from latentspace.data import ImageSet, load as load_data  # noqa: E402
from latentspace.api import load  # noqa: E402

__all__ = ["ImageSet", "load_data", "load", "__version__"]
