"""latentspace: learn the latent space of a set of images, then see it, measure it and use it."""
from __future__ import annotations

from typing import Any

from latentspace.utils.version import __version__


def load(run_dir, device="cpu"):
    """The trained model of a run folder or of a pretrained ``zoo:NAME``, in eval mode on ``device`` (see
    latentspace.api.load)."""
    from latentspace.api import load as _load  # imported on use: the API pulls in sklearn and matplotlib

    return _load(run_dir, device)


def explore(run_dir, map_method="pca"):
    """From a notebook: the explorer of a run (or zoo:NAME) on a free local port, shown inline; see
    latentspace.notebook.explore."""
    from latentspace.notebook import explore as _explore

    return _explore(run_dir, map_method=map_method)


def __getattr__(name: str) -> Any:
    # Lazy: `import latentspace` (and so the console script) starts without numpy, so Ctrl-C at start-up is
    # caught by cli.entry instead of printing a traceback from deep inside an import.
    if name == "ImageSet":
        from latentspace.data import ImageSet

        return ImageSet
    if name == "load_data":
        from latentspace.data import load

        return load
    raise AttributeError(f"module 'latentspace' has no attribute {name!r}")


__all__ = ["ImageSet", "load_data", "load", "explore", "__version__"]
