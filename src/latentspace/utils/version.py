"""The package version, kept at the bottom layer so that every layer (run folders record it) can read it."""
__version__ = "0.1.0"
