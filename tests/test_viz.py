"""Figures, plots and animations on synthetic inputs: sizes from the layout, pixels where the layout puts them."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from latentspace.latent.evolution import EvolutionResult
from latentspace.latent.interpolate import InterpolationPaths
from latentspace.metrics.disentanglement import axis_factor_table
from latentspace.metrics.realness import RealnessScores
from latentspace.viz.animate import evolution_frames, evolution_limits, frame_indices, interpolation_frames
from latentspace.viz.animate import save_gif
from latentspace.viz.figures import (
    axis_labels, edit_strip, grid_figure, interpolation_figure, tile_scale, titled, traversal_figure,
    with_column_header,
)  # fmt: skip
from latentspace.viz.grid import image_grid
from latentspace.viz.plots import AXES_WITH_KEY, COLORBAR, data_limits, metric_curves, scatter_codes

T, SIDE = 5, 16


def ramp_paths() -> InterpolationPaths:
    """Three paths of T flat grey frames: pixel darkest, slerp lightest, so each row is recognisable."""
    t = np.linspace(0, 1, T, dtype=np.float32)
    frames = {name: np.full((T, 1, SIDE, SIDE), level, np.uint8) for name, level in
              (("pixel", 40), ("lerp", 120), ("slerp", 200))}
    z = np.zeros((T, 2), np.float32)
    return InterpolationPaths(t=t, z_lerp=z, z_slerp=z, **frames)


def scores(conf: float | None) -> dict[str, RealnessScores]:
    c = None if conf is None else np.full(T, conf)
    return {name: RealnessScores(c, np.full(T, -100.0), np.full(T, 0.1)) for name in ("pixel", "lerp", "slerp")}


def test_interpolation_figure_is_the_grid_below_a_t_header_and_title():
    paths = ramp_paths()
    fig = interpolation_figure(paths, scores(0.87))
    scale = tile_scale(paths.pixel)
    captions = ["0.87"] * (3 * T)
    body = image_grid(np.concatenate([paths.pixel, paths.lerp, paths.slerp]), ncols=T, captions=captions,
                      scale=scale, row_labels=("pixel", "lerp", "slerp"))
    assert fig.width == body.width and fig.mode == "L"
    # The body sits pixel for pixel at the bottom; header and title strips fill the rest.
    np.testing.assert_array_equal(np.asarray(fig)[fig.height - body.height:], np.asarray(body))
    header = np.asarray(fig)[: fig.height - body.height]
    assert header.min() < 128  # t labels and the title are drawn
    # ELBO is the fallback score when there is no evaluator; a missing score asked for is an error.
    no_conf = interpolation_figure(paths, scores(None))
    assert no_conf.size == fig.size
    with pytest.raises(ValueError, match="was not computed"):
        interpolation_figure(paths, scores(None), score="classifier_confidence")
    plain = interpolation_figure(paths)
    assert plain.height < fig.height  # no captions, no title


def test_column_header_puts_each_text_over_its_column():
    tiles = np.zeros((3, 1, SIDE, SIDE), np.uint8)
    body = image_grid(tiles, ncols=3, scale=4, row_labels=["a long row label"])
    tile_w = SIDE * 4
    fig = np.asarray(with_column_header(body, ["x", "y", "z"], tile_w))
    header = fig[: fig.shape[0] - body.height] < 128
    label_w = body.width - 2 - 3 * (tile_w + 2)
    assert not header[:, :label_w].any()  # nothing above the row labels
    for i in range(3):
        left = label_w + 2 + i * (tile_w + 2)
        inked = np.flatnonzero(header[:, left:left + tile_w].any(0))
        assert len(inked) > 0
        centre = left + (inked.min() + inked.max()) / 2
        assert abs(centre - (left + tile_w / 2)) <= 3
    with pytest.raises(ValueError, match="cannot hold"):
        with_column_header(body, ["x"] * 10, tile_w)


def test_grid_edit_and_traversal_figures_have_the_layout_sizes():
    images = np.random.default_rng(0).integers(0, 256, (9, 3, SIDE, SIDE), dtype=np.uint8)
    g = grid_figure(images, 3, "a title")
    body = image_grid(images, ncols=3, pad=0)
    assert (g.width, g.mode) == (3 * SIDE, "RGB")
    np.testing.assert_array_equal(np.asarray(g)[g.height - body.height:], np.asarray(body))
    assert grid_figure(images, 3).size == body.size
    with pytest.raises(ValueError, match="k\\*k = 16 images, got 9"):
        grid_figure(images, 4)

    strip = edit_strip(images[:3], [-1.0, 0.0, 2.5], "mask_on")
    expected = titled(image_grid(images[:3], ncols=3, captions=["-1", "+0", "+2.5"]), "mask_on (...)")
    assert strip.size == expected.size
    with pytest.raises(ValueError, match="3 images for 2 strengths"):
        edit_strip(images[:3], [0.0, 1.0], "mask_on")

    grid = images[:6].reshape(2, 3, 3, SIDE, SIDE)
    fig = traversal_figure(grid, ["z0", "z1"], [-1.0, 0.0, 1.0])
    scale = tile_scale(images, min_side=32)
    body = image_grid(images[:6], ncols=3, scale=scale, row_labels=["z0", "z1"])
    np.testing.assert_array_equal(np.asarray(fig)[fig.height - body.height:], np.asarray(body))
    with pytest.raises(ValueError, match="A labels"):
        traversal_figure(grid, ["z0"])


def test_axis_labels_name_the_factor_each_axis_holds():
    rng = np.random.default_rng(0)
    factor = rng.random((500, 1))
    codes = np.concatenate([factor, rng.random((500, 1))], axis=1)  # z0 is the factor, z1 is noise
    table = axis_factor_table(codes, factor, ["pos_x"])
    labels = axis_labels(table, 2)
    assert labels[0] == f"z0 - holds pos_x ({table.matrix[0, 0]:.2f})" and table.matrix[0, 0] > 0.9
    assert labels[1] == "z1 - nothing above chance"
    assert axis_labels(None, 3) == ("z0", "z1", "z2")
    with pytest.raises(ValueError, match="2 axes, the latent 3"):
        axis_labels(table, 3)


def test_axis_labels_call_a_partial_but_real_link_weak_not_nothing():
    """An axis that carries a factor through heavy noise (normalised MI well above chance, below 0.2) is
    labelled with that factor and its score, so the label agrees with a traversal that visibly moves it."""
    rng = np.random.default_rng(1)
    hair = rng.integers(0, 5, 2000).astype(np.float64)
    codes = np.stack([hair + 2.0 * rng.standard_normal(2000), rng.standard_normal(2000)], axis=1)
    table = axis_factor_table(codes, hair[:, None], ["hair_color"], [True])
    score = table.matrix[0, 0]
    assert 0.03 < score < 0.2
    assert axis_labels(table, 2) == (f"z0 - weak: hair_color ({score:.2f})", "z1 - nothing above chance")


def colour_mask(img: Image.Image, rgb: tuple[int, int, int], tol: int = 40) -> np.ndarray:
    return (np.abs(np.asarray(img).astype(int) - np.array(rgb)).sum(-1) < tol)


def test_scatter_colours_classes_and_keys_them():
    rng = np.random.default_rng(0)
    left = np.c_[rng.uniform(-1, -0.8, 50), rng.uniform(-1, 1, 50)]
    right = np.c_[rng.uniform(0.8, 1, 50), rng.uniform(-1, 1, 50)]
    img = scatter_codes(np.r_[left, right], np.r_[np.zeros(50, int), np.ones(50, int)], ("left", "right"), "t")
    assert img.size == (600, 500) and img.mode == "RGB"
    # tab10 blue and orange at alpha 0.8 over white.
    blue = colour_mask(img, tuple(int(0.8 * c + 0.2 * 255) for c in (31, 119, 180)))
    orange = colour_mask(img, tuple(int(0.8 * c + 0.2 * 255) for c in (255, 127, 14)))
    axes_right = int((AXES_WITH_KEY[0] + AXES_WITH_KEY[2]) * img.width)
    xs_blue, xs_orange = np.nonzero(blue[:, :axes_right])[1], np.nonzero(orange[:, :axes_right])[1]
    assert len(xs_blue) > 50 and len(xs_orange) > 50
    assert xs_blue.mean() < img.width * 0.3 < img.width * 0.6 < xs_orange.mean()
    assert blue[:, axes_right:].any() and orange[:, axes_right:].any()  # the legend's markers
    # A continuous colouring gets a colour bar where the plain plot has white.
    x0, x1 = int(COLORBAR[0] * img.width), int((COLORBAR[0] + COLORBAR[2]) * img.width)
    y0, y1 = int((1 - COLORBAR[1] - COLORBAR[3]) * img.height), int((1 - COLORBAR[1]) * img.height)
    bar = np.asarray(scatter_codes(np.r_[left, right], values=np.linspace(0, 1, 100), value_name="smile"))
    plain = np.asarray(scatter_codes(np.r_[left, right]))
    assert bar[y0 + 5:y1 - 5, x0 + 2:x1 - 2].std() > 10
    assert (plain[y0 + 5:y1 - 5, x0 + 2:x1 - 2] == 255).all()
    with pytest.raises(ValueError, match="labels or by values"):
        scatter_codes(left, np.zeros(50, int), values=np.zeros(50))


def evolution_result() -> EvolutionResult:
    rng = np.random.default_rng(0)
    start = rng.normal(0, 0.05, (40, 2))
    end = rng.normal(0, 3.0, (40, 2)) + 5
    xy = np.stack([start, (start + end) / 2, end]).astype(np.float32)
    return EvolutionResult((0, 1, 2), xy, "latent", rng.integers(0, 3, 40), ("a", "b", "c"),
                           np.array([math.nan, -200.0, -150.0]), ())


@pytest.mark.parametrize("n, most, expected", [(3, 30, [0, 1, 2]), (3, None, [0, 1, 2]), (61, 30, None),
                                                (10, 4, [0, 3, 6, 9]), (5, 2, [0, 4])])
def test_long_runs_show_evenly_spaced_epochs_with_both_ends(n, most, expected):
    picked = frame_indices(n, most)
    if expected is not None:
        assert picked.tolist() == expected
    assert picked[0] == 0 and picked[-1] == n - 1 and len(picked) <= (most or n) and (np.diff(picked) > 0).all()
    gaps = np.diff(picked)
    assert gaps.max() - gaps.min() <= 1  # evenly spaced
    with pytest.raises(ValueError, match="at least 2"):
        frame_indices(n, 1)


def test_evolution_frames_share_one_frame_of_reference():
    result = evolution_result()
    frames = evolution_frames(result)
    assert len(frames) == 3 and {f.size for f in frames} == {(600, 500)}
    assert len(evolution_frames(result, max_frames=2)) == 2
    limits = evolution_limits(result)
    assert limits == data_limits(result.xy)
    assert limits[0] < result.xy[..., 0].min() and limits[1] > result.xy[..., 0].max()
    # Fixed limits: the tick labels left of and below the axes are the same pixels in every frame ...
    def ticks(img):
        a = np.asarray(img)
        below = int((1 - AXES_WITH_KEY[1]) * a.shape[0])
        return a[60:, : int(AXES_WITH_KEY[0] * a.shape[1])], a[below:, :]

    for frame in frames[1:]:
        for mine, first in zip(ticks(frame), ticks(frames[0])):
            np.testing.assert_array_equal(mine, first)
    # ... which they are not when each frame picks its own limits.
    own = [scatter_codes(result.xy[i], result.labels, result.class_names) for i in (0, 2)]
    assert not np.array_equal(ticks(own[0])[0], ticks(own[1])[0])
    assert not np.array_equal(np.asarray(frames[0])[:40], np.asarray(frames[1])[:40])  # the titles differ


def test_save_gif_round_trips_frames(tmp_path):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [Image.new("RGB", (20, 10), c) for c in colours]
    path = save_gif(frames, tmp_path / "a.gif", duration_ms=120)
    with Image.open(path) as gif:
        assert gif.n_frames == 3 and gif.size == (20, 10)
        for i, c in enumerate(colours):
            gif.seek(i)
            assert gif.convert("RGB").getpixel((5, 5)) == c
            assert gif.info["duration"] == 120
    with pytest.raises(ValueError, match="share one size"):
        save_gif([frames[0], Image.new("RGB", (5, 5))], tmp_path / "b.gif")
    with pytest.raises(ValueError, match="written as .gif"):
        save_gif(frames, tmp_path / "c.png")
    assert not (tmp_path / "b.gif").exists() and not (tmp_path / "c.png").exists()


def test_interpolation_frames_show_the_three_paths_at_each_t():
    paths = ramp_paths()
    frames = interpolation_frames(paths)
    assert len(frames) == T and len({f.size for f in frames}) == 1
    tile = image_grid(np.stack([paths.pixel[0], paths.lerp[0], paths.slerp[0]]), ncols=3,
                      captions=("pixel", "lerp", "slerp"))
    np.testing.assert_array_equal(np.asarray(frames[0])[frames[0].height - tile.height:], np.asarray(tile))


def test_metric_curves_plot_the_records():
    records = [{"epoch": e, "test_elbo": -200.0 + 10 * e, "train_elbo": -210.0 + 10 * e} for e in (1, 2, 3)]
    img = metric_curves(records)
    assert img.size == (600, 500)
    assert np.asarray(img).min() < 100  # lines and labels drawn
    with pytest.raises(ValueError, match="no metrics records"):
        metric_curves([{"epoch": 1}])
