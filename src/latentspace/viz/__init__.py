"""Pictures of a run: image grids, labelled figures of latent operations, matplotlib plots and GIF animations.

The names below are the public API of this layer. They load on first use (PEP 562), so drawing a grid
(viz.grid) does not import matplotlib.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "grid": ("image_grid", "save_image", "png_bytes"),
    "figures": ("interpolation_figure", "grid_figure", "edit_strip", "traversal_figure", "axis_labels", "titled"),
    "plots": ("scatter_codes", "metric_curves", "compression_plot", "data_limits", "figure_image"),
    "animate": ("save_gif", "gif_bytes", "evolution_frames", "evolution_limits", "interpolation_frames"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)

if TYPE_CHECKING:
    from latentspace.viz.animate import evolution_frames, evolution_limits, gif_bytes, interpolation_frames, save_gif
    from latentspace.viz.figures import axis_labels, edit_strip, grid_figure, interpolation_figure, titled, traversal_figure
    from latentspace.viz.grid import image_grid, png_bytes, save_image
    from latentspace.viz.plots import compression_plot, data_limits, figure_image, metric_curves, scatter_codes


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
