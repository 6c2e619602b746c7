"""Plots of several runs at once, for the compare page: labelled points and one curve per run."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from latentspace.viz.plots import DPI, figure_image

SIZE = (6.0, 4.2)


def _colours(n: int) -> list:
    cmap = colormaps["tab10" if n <= 10 else "viridis"]
    return [cmap(i if n <= 10 else i / max(1, n - 1)) for i in range(n)]


def labelled_points(points: Sequence[tuple[float, float]], labels: Sequence[str], xlabel: str, ylabel: str,
                    title: str):
    """One labelled dot per run (points with a missing coordinate are left out) -> PIL image."""
    fig = Figure(figsize=SIZE, dpi=DPI)
    ax = fig.add_axes((0.13, 0.13, 0.82, 0.78))
    for (x, y), label, colour in zip(points, labels, _colours(len(labels))):
        if x is None or y is None or not (np.isfinite(x) and np.isfinite(y)):
            continue
        ax.scatter([x], [y], s=40, color=colour)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    return figure_image(fig)


def run_curves(series: Sequence[tuple[Sequence[float], Sequence[float]]], labels: Sequence[str], xlabel: str,
               ylabel: str, title: str):
    """One line per run, (xs, ys) each -> PIL image."""
    fig = Figure(figsize=SIZE, dpi=DPI)
    ax = fig.add_axes((0.13, 0.13, 0.82, 0.78))
    for (xs, ys), label, colour in zip(series, labels, _colours(len(labels))):
        ax.plot(xs, ys, marker="o", ms=3, color=colour, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    if labels:
        ax.legend(fontsize=7, loc="best")
    return figure_image(fig)
