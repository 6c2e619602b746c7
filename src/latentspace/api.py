"""Top-level conveniences: one call from a run folder to a ready model."""
from __future__ import annotations

from pathlib import Path

from latentspace.models import Autoencoder
from latentspace.train.run import open_run


def load(run_dir: str | Path, device: str = "cpu") -> Autoencoder:
    """The trained model of a run folder, in eval mode on ``device`` (ValueError if it is not a run)."""
    return open_run(run_dir).model(device)
