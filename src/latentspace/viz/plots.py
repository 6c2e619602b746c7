"""Matplotlib plots rendered off-screen into PIL images: 2-D maps of codes and training curves.

Figures are built with matplotlib's object API on an Agg canvas (``Figure`` + ``FigureCanvasAgg``), never
through pyplot: the Agg backend is fixed here without switching the process-wide backend, no global figure
state is kept, and nothing is ever shown. Axes sit at fixed positions in the figure (no tight layout), so
frames drawn with the same ``limits`` line up pixel for pixel, which animations rely on.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

FIGSIZE = (6.0, 5.0)  # inches
DPI = 100
MAX_LEGEND_CLASSES = 20  # more classes than this are coloured along a colour bar instead of a legend
AXES_WITH_KEY = (0.11, 0.09, 0.64, 0.82)  # left, bottom, width, height: room on the right for a legend or bar
AXES_ALONE = (0.11, 0.09, 0.84, 0.82)
COLORBAR = (0.78, 0.09, 0.03, 0.82)
MARGIN = 0.05  # fraction of the data range added on each side when limits are computed


def figure_image(fig: Figure) -> Image.Image:
    """Render ``fig`` on an Agg canvas -> RGB PIL image of figsize * dpi pixels."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy())


def data_limits(xy: np.ndarray, margin: float = MARGIN) -> tuple[float, float, float, float]:
    """(xmin, xmax, ymin, ymax) around points (..., 2), widened by ``margin`` of the range (1 when the range is 0)."""
    pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0 or not np.isfinite(pts).all():
        raise ValueError(f"limits need finite points (..., 2), got shape {np.shape(xy)}")
    lo, hi = pts.min(0), pts.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    lo, hi = lo - margin * span, hi + margin * span
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def _point_size(n: int) -> float:
    """Marker area in pt^2: large for a few points, small for thousands so clusters stay readable."""
    return float(np.clip(3000.0 / max(n, 1), 1.0, 30.0))


def scatter_codes(
    xy: np.ndarray,
    labels: np.ndarray | None = None,
    class_names: Sequence[str] = (),
    title: str = "",
    values: np.ndarray | None = None,
    value_name: str = "",
    limits: tuple[float, float, float, float] | None = None,
    figsize: tuple[float, float] = FIGSIZE,
    dpi: int = DPI,
) -> Image.Image:
    """A map of codes xy (N, 2) as an RGB image of figsize * dpi pixels.

    labels (N,) int: one colour per class with a legend naming ``class_names`` (a colour bar past
    MAX_LEGEND_CLASSES classes). values (N,) float: a continuous colouring with a colour bar named
    ``value_name``. Neither: one colour. limits: (xmin, xmax, ymin, ymax), default ``data_limits(xy)``.
    """
    xy = np.asarray(xy, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"scatter_codes needs points (N, 2), got shape {xy.shape}")
    if labels is not None and values is not None:
        raise ValueError("scatter_codes colours by labels or by values, not both")
    colour = labels if labels is not None else values
    if colour is not None and np.shape(colour) != (len(xy),):
        raise ValueError(f"colours must have shape ({len(xy)},), got {np.shape(colour)}")
    fig = Figure(figsize=figsize, dpi=dpi)
    categorical = labels is not None and int(np.max(labels, initial=0)) < MAX_LEGEND_CLASSES
    keyed = colour is not None
    ax = fig.add_axes(AXES_WITH_KEY if keyed else AXES_ALONE)
    size = _point_size(len(xy))
    if categorical:
        cmap = colormaps["tab10" if int(np.max(labels, initial=0)) < 10 else "tab20"]
        for c in np.unique(labels):
            pts = xy[labels == c]
            name = class_names[c] if c < len(class_names) else str(c)
            ax.scatter(pts[:, 0], pts[:, 1], s=size, color=cmap(int(c) % cmap.N), label=name, alpha=0.8,
                       linewidths=0)
        legend_size = "small" if len(np.unique(labels)) <= 12 else "x-small"
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=legend_size,
                  markerscale=max(1.0, 5.0 / np.sqrt(size)), frameon=False)
    elif keyed:
        points = ax.scatter(xy[:, 0], xy[:, 1], s=size, c=np.asarray(colour, np.float64), cmap="viridis",
                            alpha=0.8, linewidths=0)
        bar = fig.colorbar(points, cax=fig.add_axes(COLORBAR))
        bar.set_label(value_name or "label")
    else:
        ax.scatter(xy[:, 0], xy[:, 1], s=size, color="tab:blue", alpha=0.8, linewidths=0)
    x0, x1, y0, y1 = limits if limits is not None else data_limits(xy)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_title(title)
    return figure_image(fig)


def metric_curves(
    metrics: Sequence[dict], keys: Sequence[str] = ("test_elbo", "train_elbo"), figsize: tuple[float, float] = FIGSIZE,
    dpi: int = DPI,
) -> Image.Image:
    """Curves of per-epoch metrics records (metrics.jsonl): one line per key present, epoch on x."""
    records = [r for r in metrics if "epoch" in r]
    present = [k for k in keys if any(k in r for r in records)]
    if not present:
        raise ValueError(f"no metrics records with {', '.join(keys)} to plot ({len(records)} records)")
    fig = Figure(figsize=figsize, dpi=dpi)
    ax = fig.add_axes(AXES_ALONE)
    for k in present:
        pts = np.array([(r["epoch"], r[k]) for r in records if k in r], dtype=np.float64)
        ax.plot(pts[:, 0], pts[:, 1], marker="o", label=k.replace("_", " "))
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per image (higher is better)")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return figure_image(fig)


def compression_plot(
    components: Sequence[int], pca_mse: Sequence[float], latent_dim: int, model_mse: float,
    mean_image_mse: float | None = None, figsize: tuple[float, float] = FIGSIZE, dpi: int = DPI,
) -> Image.Image:
    """Test MSE against the number of axes: PCA's curve (log-log), the model as one point at its latent size,
    and the mean image (0 axes) as a dashed line."""
    if len(components) != len(pca_mse) or not len(components):
        raise ValueError(f"compression_plot needs one MSE per PCA size, got {len(components)} and {len(pca_mse)}")
    fig = Figure(figsize=figsize, dpi=dpi)
    ax = fig.add_axes(AXES_ALONE)
    ax.plot(components, pca_mse, marker="o", label="PCA (linear)")
    ax.scatter([latent_dim], [model_mse], s=90, marker="*", color="tab:red", zorder=3,
               label=f"model, {latent_dim} latent axes")
    if mean_image_mse is not None:
        ax.axhline(mean_image_mse, color="grey", linestyle="--", linewidth=1, label="mean image (0 axes)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("axes (PCA components / latent size)")
    ax.set_ylabel("test MSE per pixel (lower is better)")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3, which="both")
    return figure_image(fig)
