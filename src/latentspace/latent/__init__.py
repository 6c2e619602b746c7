"""Latent-space maths over a model and arrays: codes, space counting, paths, directions, samplers, grids,
traversals and projector export.

The names below are the public API of this layer. They load on first use (PEP 562), so importing one
module of the layer (say latent.codes) does not pull in scikit-learn and scipy for the others.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "codes": ("encode_images", "decode_latents", "model_device", "check_images", "check_latents"),
    "space": ("SpaceCount", "count_space", "latent_grid_points", "coverage_log10", "enumerate_space"),
    "interpolate": ("lerp", "slerp", "pixel_path", "interpolation_paths", "InterpolationPaths"),
    "directions": ("AttributeDirection", "BinaryTarget", "binary_targets", "fit_direction", "conditional_direction",
                   "directions_for", "edit_latents", "save_directions", "load_directions"),
    "samplers": ("PriorSampler", "GMMSampler"),
    "manifold": ("prior_quantile_grid", "plane_grid", "pca_plane_grid", "project_2d"),
    "traverse": ("traversal_latents", "traversal_grid", "DEFAULT_VALUES"),
    "export": ("export_projector",),
    "evolution": ("EvolutionResult", "evolution_from_snapshots", "project_epochs"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)

if TYPE_CHECKING:
    from latentspace.latent.codes import check_images, check_latents, decode_latents, encode_images, model_device
    from latentspace.latent.directions import (
        AttributeDirection, BinaryTarget, binary_targets, conditional_direction, directions_for, edit_latents,
        fit_direction, load_directions, save_directions,
    )  # fmt: skip
    from latentspace.latent.evolution import EvolutionResult, evolution_from_snapshots, project_epochs
    from latentspace.latent.export import export_projector
    from latentspace.latent.interpolate import InterpolationPaths, interpolation_paths, lerp, pixel_path, slerp
    from latentspace.latent.manifold import pca_plane_grid, plane_grid, prior_quantile_grid, project_2d
    from latentspace.latent.samplers import GMMSampler, PriorSampler
    from latentspace.latent.space import SpaceCount, count_space, coverage_log10, enumerate_space, latent_grid_points
    from latentspace.latent.traverse import DEFAULT_VALUES, traversal_grid, traversal_latents


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
