"""latentspace: learn the latent space of a set of images, then see it, measure it and use it."""
from __future__ import annotations

from latentspace.data import ImageSet, load as load_data
from latentspace.utils.version import __version__


def load(run_dir, device="cpu"):
    """The trained model of a run folder, in eval mode on ``device`` (see latentspace.api.load)."""
    from latentspace.api import load as _load  # imported on use: the API pulls in sklearn and matplotlib

    return _load(run_dir, device)


__all__ = ["ImageSet", "load_data", "load", "__version__"]
