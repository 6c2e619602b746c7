"""Labelled figures of latent operations, built on viz.grid: interpolation rows, manifold grids, edit strips,
traversals and located images.

Column headers (t of a path, the value of a traversal) sit in a strip above an ``image_grid`` body; their
positions follow grid.py's documented layout (a label column of ``width - pad - ncols * (tile + pad)``
pixels, then tiles of ``tile`` pixels with ``pad`` between), with the tile size fixed here by passing
``scale`` so image_grid never changes it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

from latentspace.latent.interpolate import InterpolationPaths
from latentspace.metrics.disentanglement import AxisFactorTable
from latentspace.metrics.realness import PATHS, RealnessScores
from latentspace.viz.grid import BACKGROUND, INK, MIN_CAPTIONED_TILE, _fit_text, _font, _text_height, image_grid
from latentspace.viz.plots import AXES_ALONE, AXES_WITH_KEY, data_limits, scatter_codes

PAD = 2  # image_grid's default padding
TEXT_GAP = 3  # pixels around a line of text in a title or header strip
SPACE_TILE_PX = 48  # tiny enumerated images are enlarged to about this many pixels
FRAME_GREY = 160
SCORE_FORMATS = {"classifier_confidence": "{:.2f}", "elbo": "{:.0f}", "nearest_distance": "{:.3f}"}
SCORE_NAMES = {"classifier_confidence": "evaluator confidence", "elbo": "ELBO (nats)",
               "nearest_distance": "RMS to nearest training image"}


def tile_scale(images: np.ndarray, min_side: int = MIN_CAPTIONED_TILE) -> int:
    """The integer enlargement that makes tiles of uint8 (N, C, H, W) at least ``min_side`` pixels."""
    return max(1, math.ceil(min_side / min(images.shape[2], images.shape[3])))


def _ink(img: Image.Image):
    return INK if img.mode == "L" else (INK,) * 3


def _background(img: Image.Image):
    return BACKGROUND if img.mode == "L" else (BACKGROUND,) * 3


def _stack(top: Image.Image, bottom: Image.Image) -> Image.Image:
    """``top`` above ``bottom`` (same width, bottom's mode)."""
    out = Image.new(bottom.mode, (bottom.width, top.height + bottom.height), _background(bottom))
    out.paste(top.convert(bottom.mode), (0, 0))
    out.paste(bottom, (0, top.height))
    return out


def titled(img: Image.Image, title: str) -> Image.Image:
    """``img`` with ``title`` centred in a strip above it (unchanged when title is empty)."""
    if not title:
        return img
    strip = Image.new(img.mode, (img.width, _text_height() + 2 * TEXT_GAP), _background(img))
    text = _fit_text(title, img.width - 2 * TEXT_GAP)
    ImageDraw.Draw(strip).text(((img.width - _font().getlength(text)) / 2, TEXT_GAP), text, fill=_ink(img),
                               font=_font())
    return _stack(strip, img)


def with_column_header(body: Image.Image, texts: Sequence[str], tile_w: int, pad: int = PAD) -> Image.Image:
    """``body`` (an image_grid of len(texts) columns, tiles ``tile_w`` px wide) with ``texts`` centred above
    its columns."""
    ncols = len(texts)
    label_w = body.width - pad - ncols * (tile_w + pad)
    if label_w < 0:
        raise ValueError(f"a grid {body.width} px wide cannot hold {ncols} columns of {tile_w} px tiles")
    strip = Image.new(body.mode, (body.width, _text_height() + 2 * TEXT_GAP), _background(body))
    draw = ImageDraw.Draw(strip)
    for i, text in enumerate(texts):
        text = _fit_text(str(text), tile_w + pad)
        centre = label_w + pad + i * (tile_w + pad) + tile_w / 2
        draw.text((centre - _font().getlength(text) / 2, TEXT_GAP), text, fill=_ink(body), font=_font())
    return _stack(strip, body)


def _score_key(scores: Mapping[str, RealnessScores], score: str | None) -> str:
    """The score to print under frames: the one asked for, else evaluator confidence when there is one, else ELBO."""
    if score is not None:
        if score not in SCORE_FORMATS:
            raise ValueError(f"score must be one of {', '.join(SCORE_FORMATS)}, got {score!r}")
        return score
    first = next(iter(scores.values()))
    return "classifier_confidence" if first.classifier_confidence is not None else "elbo"


def interpolation_figure(
    paths: InterpolationPaths, scores: Mapping[str, RealnessScores] | None = None, score: str | None = None,
    title: str = "", min_tile: int = MIN_CAPTIONED_TILE,
) -> Image.Image:
    """Three labelled rows (pixel cross-fade, latent lerp, latent slerp) with t above the columns and, when
    ``scores`` (path -> RealnessScores) are given, each frame's ``score`` under its tile (default: evaluator
    confidence when scored, else ELBO)."""
    images = np.concatenate([getattr(paths, name) for name in PATHS])
    captions = None
    if scores is not None:
        key = _score_key(scores, score)
        values = [getattr(scores[name], key) for name in PATHS]
        if any(v is None for v in values):
            raise ValueError(f"score {key!r} was not computed for these paths (no evaluator)")
        captions = [SCORE_FORMATS[key].format(v) for v in np.concatenate(values)]
        title = title or f"under each frame: {SCORE_NAMES[key]}"
    scale = tile_scale(images, min_tile)
    body = image_grid(images, ncols=len(paths.t), captions=captions, scale=scale, pad=PAD,
                      row_labels=("pixel", "lerp", "slerp"))
    header = with_column_header(body, [f"t={t:.2f}" for t in paths.t], images.shape[3] * scale)
    return titled(header, title)


def grid_figure(images: np.ndarray, k: int, title: str = "") -> Image.Image:
    """A k x k grid of uint8 (k*k, C, H, W) images, tiles touching (a manifold reads as one picture), titled."""
    if len(images) != k * k:
        raise ValueError(f"grid_figure needs k*k = {k * k} images, got {len(images)}")
    return titled(image_grid(images, ncols=k, pad=0), title)


def edit_strip(images: np.ndarray, strengths: Sequence[float], attr: str) -> Image.Image:
    """One row of edits, uint8 (S, C, H, W), each captioned with its strength, titled with the attribute."""
    if len(images) != len(strengths):
        raise ValueError(f"edit_strip has {len(images)} images for {len(strengths)} strengths")
    body = image_grid(images, ncols=len(images), captions=[f"{s:+g}" for s in strengths], pad=PAD)
    return titled(body, f"{attr} (strength in stds of the training codes)")


def axis_labels(table: AxisFactorTable | None, latent_dim: int) -> tuple[str, ...]:
    """A row label per latent axis, from the table's verdict on the axis's strongest factor (the one whose
    normalised MI most exceeds its shuffled-data floor; see metrics.disentanglement):
    'z3 - holds pos_x (0.82)' when its normalised MI reaches the table's threshold (0.2);
    'z3 - weak: hair_color (0.12)' when it is below that but clearly above chance: the axis does move that factor
    (a traversal shows it) while other axes carry part of it too;
    'z3 - nothing above chance' when no factor beats the estimator's floor; 'z3' without a table.
    An ASCII dash: PIL's default font has no em dash."""
    if table is None:
        return tuple(f"z{i}" for i in range(latent_dim))
    if table.matrix.shape[0] != latent_dim:
        raise ValueError(f"the table has {table.matrix.shape[0]} axes, the latent {latent_dim}")
    out = []
    for i, (name, strength) in enumerate(zip(table.strongest, table.strength)):
        if strength == "holds":
            out.append(f"z{i} - holds {name} ({table.score(i):.2f})")
        elif strength == "weak":
            out.append(f"z{i} - weak: {name} ({table.score(i):.2f})")
        else:
            out.append(f"z{i} - nothing above chance")
    return tuple(out)


def traversal_figure(
    grid: np.ndarray, axis_labels: Sequence[str], values: Sequence[float] | None = None, title: str = "",
    min_tile: int = 32,
) -> Image.Image:
    """A traversal uint8 (A, V, C, H, W): a row per axis labelled ``axis_labels``, the values above the columns."""
    if grid.ndim != 5 or len(axis_labels) != grid.shape[0]:
        raise ValueError(f"traversal_figure needs a grid (A, V, C, H, W) and A labels, got {grid.shape} and "
                         f"{len(axis_labels)} labels")
    a, v = grid.shape[:2]
    images = grid.reshape(a * v, *grid.shape[2:])
    scale = tile_scale(images, min_side=min_tile)
    body = image_grid(images, ncols=v, scale=scale, pad=PAD, row_labels=list(axis_labels))
    if values is not None:
        if len(values) != v:
            raise ValueError(f"traversal_figure has {v} columns for {len(values)} values")
        body = with_column_header(body, [f"{x:+.2g}" for x in values], grid.shape[4] * scale)
    return titled(body, title)


def space_figure(images: np.ndarray, tile_px: int = SPACE_TILE_PX) -> Image.Image:
    """Every image of a tiny space (uint8 (N, C, H, W) from latent.space.enumerate_space) enlarged to about
    ``tile_px`` pixels, each in a grey frame so that white pixels stay visible against the white background."""
    scale = max(1, tile_px // max(images.shape[2], images.shape[3]))
    tiles = images.repeat(scale, axis=2).repeat(scale, axis=3)
    framed = np.pad(tiles, ((0, 0), (0, 0), (2, 2), (2, 2)), constant_values=FRAME_GREY)
    return image_grid(framed, pad=6)


def location_figure(
    images: np.ndarray, reconstructions: np.ndarray, neighbours: np.ndarray, row_labels: Sequence[str],
    map_xy: np.ndarray, points: np.ndarray, labels: np.ndarray | None = None, class_names: Sequence[str] = (),
    title: str = "",
) -> Image.Image:
    """Located images: a row per image (uint8 images (Q, C, H, W), reconstructions (Q, C, H, W), nearest
    training images (Q, K, C, H, W)) labelled ``row_labels``, above the map of the test codes (map_xy (N, 2),
    coloured by ``labels``) with each image's place (points (Q, 2)) ringed in red and numbered 1..Q."""
    q, k = neighbours.shape[:2]
    if images.shape != reconstructions.shape or len(images) != q or len(row_labels) != q or np.shape(points) != (q, 2):
        raise ValueError(f"location_figure needs Q images, reconstructions, neighbour rows, labels and points, got "
                         f"{images.shape}, {reconstructions.shape}, {neighbours.shape}, {len(row_labels)}, "
                         f"{np.shape(points)}")
    tiles = np.concatenate([images[:, None], reconstructions[:, None], neighbours], axis=1)
    scale = tile_scale(images, MIN_CAPTIONED_TILE)
    body = image_grid(tiles.reshape(-1, *images.shape[1:]), ncols=k + 2, scale=scale, pad=PAD,
                      row_labels=list(row_labels))
    grid = with_column_header(body, ["image", "recon", *(f"near {j + 1}" for j in range(k))], images.shape[3] * scale)
    limits = data_limits(np.concatenate([np.asarray(map_xy, np.float64), np.asarray(points, np.float64)]))
    the_map = scatter_codes(map_xy, labels, class_names, title="where it lands: the PCA map of the test codes",
                            limits=limits)
    _ring(the_map, np.asarray(points, np.float64), limits, AXES_WITH_KEY if labels is not None else AXES_ALONE)
    width = max(grid.width, the_map.width)
    return titled(_stack(_centred(grid, width, "RGB"), _centred(the_map, width, "RGB")), title)


def _centred(img: Image.Image, width: int, mode: str) -> Image.Image:
    out = Image.new(mode, (width, img.height), (BACKGROUND,) * 3 if mode == "RGB" else BACKGROUND)
    out.paste(img.convert(mode), ((width - img.width) // 2, 0))
    return out


def _ring(img: Image.Image, points: np.ndarray, limits: tuple[float, float, float, float],
          axes: tuple[float, float, float, float], radius: int = 7) -> None:
    """Ring and number points (Q, 2) in data units on a plots.py map, whose axes sit at the fixed figure
    fraction ``axes`` (left, bottom, width, height) with data ``limits``."""
    x0, x1, y0, y1 = limits
    left, bottom, w, h = axes
    draw = ImageDraw.Draw(img)
    for i, (x, y) in enumerate(points):
        px = img.width * (left + w * (x - x0) / (x1 - x0))
        py = img.height * (1.0 - (bottom + h * (y - y0) / (y1 - y0)))
        draw.ellipse((px - radius, py - radius, px + radius, py + radius), outline=(220, 0, 0), width=2)
        draw.text((px + radius + 1, py - radius - _text_height()), str(i + 1), fill=(220, 0, 0), font=_font())
