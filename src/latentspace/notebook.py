"""latentspace in Jupyter: each function returns something that displays itself inline.

Pictures come back as :class:`Picture` (a PIL image with ``_repr_png_``), measures as :class:`Table`
(``_repr_html_``), and :func:`explore` serves the explorer on a free local port and shows it in an IFrame.
Every function takes a run folder or ``zoo:NAME``::

    from latentspace import notebook as ls
    ls.interpolation("zoo:mnist", 3, 17)      # the pixel cross-fade against the latent paths
    ls.evaluation("zoo:faces")                # the run's measures as a table

Like the CLI, this module only calls ``latentspace.api`` and ``latentspace.viz`` and presents the result.
"""
from __future__ import annotations

import atexit
import html
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from latentspace import api
from latentspace.api.compare import compare as compare_runs, row_values, table_cells
from latentspace.latent.codes import decode_latents, encode_images
from latentspace.latent.space import count_space, enumerate_space
from latentspace.viz.animate import evolution_frames
from latentspace.viz.figures import (
    axis_labels, edit_strip, grid_figure, interpolation_figure, space_figure, traversal_figure,
)
from latentspace.viz.grid import image_grid, png_bytes
from latentspace.viz.plots import scatter_codes

Run = str | Path


@dataclass(frozen=True)
class Picture:
    """A figure: ``image`` (PIL), shown inline by Jupyter, saved with :meth:`save`; ``result`` is the api
    result it was drawn from (arrays, scores), for the reader who wants the numbers."""

    image: Image.Image
    title: str = ""
    result: Any = None

    def _repr_png_(self) -> bytes:
        return png_bytes(self.image)

    def save(self, path: str | Path) -> Path:
        from latentspace.viz.grid import save_image

        return save_image(self.image, path)


@dataclass(frozen=True)
class Table:
    """Rows of formatted cells under ``columns``; shown inline as an HTML table."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in self.rows)
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        return "\n".join("  ".join(r) for r in (self.columns, *self.rows))


def space(shape: tuple[int, int, int] = (2, 2, 1), levels: int = 2) -> Picture:
    """Every image of a tiny pixel space (``levels ** (H*W*C)`` of them), enlarged; the count is in the title."""
    count = count_space(shape, levels)
    return Picture(space_figure(enumerate_space(shape, levels)), f"{count.exact:,} images", count)


def evolution(run: Run, shown: int = 3) -> Picture:
    """The probe codes' map at ``shown`` epochs from first to last: the manifold being learned."""
    result = api.evolution(run)
    frames = evolution_frames(result)
    picked = [frames[int(i)] for i in np.unique(np.linspace(0, len(frames) - 1, shown).round())]
    image = picked[0]
    for frame in picked[1:]:
        image = _side_by_side(image, frame)
    return Picture(image, "evolution", result)


def reconstructions(run: Run, n: int = 8) -> Picture:
    """The first ``n`` test images (top row) and their reconstructions (bottom row)."""
    opened, model = api.open_model(run, "cpu")
    images = opened.dataset("test").images[:n]
    recon = decode_latents(model, encode_images(model, images))
    grid = image_grid(np.concatenate([images, recon]), ncols=len(images), row_labels=("input", "decoded"))
    return Picture(grid, "reconstructions", recon)


def samples(run: Run, n: int = 32, sampler: str = "diffusion", seed: int = 0) -> Picture:
    """``n`` images decoded from codes drawn by ``sampler`` (prior, gmm or diffusion; fitted once, stored)."""
    opened, model = api.open_model(run, "cpu")
    chosen = api.sampler_for(opened, model, sampler, seed)
    images = decode_latents(model, chosen.sample(n, np.random.default_rng(seed)))
    return Picture(image_grid(images), f"samples ({sampler})", images)


def interpolation(run: Run, a: api.ImageRef = 0, b: api.ImageRef = 1, steps: int = 10) -> Picture:
    """Pixel cross-fade against the lerp and slerp latent paths from ``a`` to ``b``, each frame scored."""
    result = api.interpolate(run, a, b, steps=steps)
    return Picture(interpolation_figure(result.paths, result.scores), "interpolation", result)


def manifold(run: Run, method: str = "pca", k: int = 12) -> Picture:
    """The map of the encoded test split beside the decoded plane of its first two principal components."""
    result = api.manifold(run, method=method, k=k)
    colour = f", coloured by {result.label_name}" if result.label_name else ""
    scatter = scatter_codes(result.xy, result.labels, result.class_names, f"test codes ({result.method}{colour})")
    plane = grid_figure(result.grids[-1].images, k, result.grids[-1].title)
    return Picture(_side_by_side(scatter, plane), "manifold", result)


def traversal(run: Run, image: api.ImageRef = 0) -> Picture:
    """Each latent axis swept around one image's code, rows labelled by the factor the axis holds."""
    result = api.traverse(run, image)
    labels = axis_labels(result.table, len(result.z0))
    return Picture(traversal_figure(result.grid, labels, result.values, title=f"traversal around {result.source}"),
                   "traversal", result)


def edit(run: Run, image: api.ImageRef, attribute: str, strengths: Sequence[float] = (-2, -1, 0, 1, 2)) -> Picture:
    """One image moved along an attribute's direction (e.g. 'glasses' or 'hair_color=blond')."""
    images = api.edit(run, image, attribute, strengths)
    return Picture(edit_strip(images, strengths, attribute), f"edit {attribute}", images)


def evaluation(*runs: Run) -> Table:
    """The cached measures of one or more runs (measured first where none are cached), one row per run."""
    comparison = compare_runs(list(runs))
    columns, rows = table_cells([r.name for r in comparison.rows], [row_values(r) for r in comparison.rows])
    return Table(columns, rows, f"{comparison.dataset}: {len(rows)} run(s)")


compare = evaluation  # the same table: a comparison is the evaluation of several runs


def describe(run: Run, images: Sequence[api.ImageRef]) -> Table:
    """Each image in words, read off its code by the run's attribute readers."""
    found = api.describe(run, list(images))
    return Table(("image", "description"), tuple((d.source, d.words()) for d in found))


def _side_by_side(left: Image.Image, right: Image.Image) -> Image.Image:
    out = Image.new("RGB", (left.width + right.width, max(left.height, right.height)), "white")
    out.paste(left.convert("RGB"), (0, 0))
    out.paste(right.convert("RGB"), (left.width, 0))
    return out


@dataclass
class Explorer:
    """A running explorer: ``url``; shown inline as an IFrame; :meth:`stop` ends it (the kernel's exit does too)."""

    url: str
    server: Any
    thread: threading.Thread
    height: int = 720

    def _repr_html_(self) -> str:
        return (f'<iframe src="{html.escape(self.url)}" width="100%" height="{self.height}" '
                f'style="border:0"></iframe><p>explorer at <a href="{html.escape(self.url)}">{html.escape(self.url)}</a></p>')

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def explore(run: Run, map_method: str = "pca", height: int = 720) -> Explorer:
    """Serve the explorer of ``run`` on a free port of 127.0.0.1 in a background thread and show it inline."""
    import uvicorn

    from latentspace.explorer import create_app
    from latentspace.explorer.app import listen

    sock = listen("127.0.0.1", 0)
    app = create_app(api.open_run(run).path, map_method=map_method)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        raise RuntimeError("the explorer did not start within 30 s")
    host, port = sock.getsockname()[:2]
    explorer = Explorer(f"http://{host}:{port}/", server, thread, height)
    atexit.register(explorer.stop)
    return explorer
