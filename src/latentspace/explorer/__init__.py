"""The live explorer: a local web app over a run folder (``latentspace explore RUN``). See explorer.app."""
from latentspace.explorer.app import create_app

__all__ = ["create_app"]
