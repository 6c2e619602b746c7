"""dSprites-style shapes: factor grid, geometry of the rendered sprites, seeding and splits."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from latentspace.data import load
from latentspace.data.render import coverage, runs, sd_box, sd_heart, split_counts
from latentspace.data.shapes import (
    DEFAULT_SIZES,
    FACTOR_NAMES,
    HALF_SIDE,
    SHAPES,
    load_shapes,
    render_shapes,
    render_shapes_by_index,
    shapes_factor_grid,
    sprite_centres,
)

SIZE = 64


def sprites(shape=0, scale=1.0, orientation=0.0, pos_x=0.5, pos_y=0.5, size: int = SIZE) -> np.ndarray:
    """Render one row per broadcast combination of the given factor values; (N, size, size) float in [0, 1]."""
    cols = np.broadcast_arrays(shape, scale, orientation, pos_x, pos_y)
    factors = np.stack([np.ravel(c).astype(np.float64) for c in cols], axis=1)
    return render_shapes(factors, size=size)[:, 0].astype(np.float64) / 255.0


def centroid(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intensity-weighted centre (x, y) in pixels, pixel centres at i + 0.5."""
    grid = np.arange(images.shape[-1]) + 0.5
    mass = images.sum(axis=(1, 2))
    return (images.sum(axis=1) * grid).sum(axis=1) / mass, (images.sum(axis=2) * grid).sum(axis=1) / mass


def test_grid_is_the_dsprites_product():
    grid = shapes_factor_grid()
    assert grid.names == FACTOR_NAMES
    assert grid.sizes == (3, 6, 40, 32, 32)
    assert grid.total == 737_280
    np.testing.assert_allclose(grid.values[1], np.linspace(0.5, 1.0, 6))
    assert grid.values[2][0] == 0.0 and grid.values[2][-1] < 2 * math.pi
    np.testing.assert_allclose(np.diff(grid.values[2]), 2 * math.pi / 40)
    np.testing.assert_allclose(grid.values[3][[0, -1]], [0.0, 1.0])


def test_flat_index_is_mixed_radix_with_last_factor_fastest():
    grid = shapes_factor_grid()
    f = grid.factors(np.array([0, 1, 32, 32 * 32 * 40 * 6]))
    np.testing.assert_allclose(f[0], [0, 0.5, 0, 0, 0])
    np.testing.assert_allclose(f[1], [0, 0.5, 0, 0, 1 / 31], rtol=1e-6)
    np.testing.assert_allclose(f[2], [0, 0.5, 0, 1 / 31, 0], rtol=1e-6)
    np.testing.assert_allclose(f[3], [1, 0.5, 0, 0, 0])


def test_index_factor_round_trip():
    grid = shapes_factor_grid()
    idx = np.random.default_rng(0).integers(0, grid.total, 500)
    images, factors = render_shapes_by_index(idx, size=32)
    assert images.shape == (500, 1, 32, 32) and images.dtype == np.uint8
    assert factors.dtype == np.float32
    np.testing.assert_array_equal(grid.indices(factors), idx)
    np.testing.assert_array_equal(factors, grid.factors(idx))


def test_centroid_follows_position_exactly():
    pos = np.linspace(0.0, 1.0, 32)
    for shape in (0, 1):  # centrally symmetric shapes: centroid == centre
        cx, _ = centroid(sprites(shape, pos_x=pos, orientation=0.3))
        _, cy = centroid(sprites(shape, pos_y=pos, orientation=0.3))
        np.testing.assert_allclose(cx, sprite_centres(pos, SIZE), atol=0.05)
        np.testing.assert_allclose(cy, sprite_centres(pos, SIZE), atol=0.05)
    hx, _ = centroid(sprites(2, pos_x=pos))
    assert np.all(np.diff(hx) > 0) and np.corrcoef(pos, hx)[0, 1] > 0.999


def test_area_follows_scale_squared():
    scales = np.linspace(0.5, 1.0, 6)
    square = sprites(0, scale=scales).sum(axis=(1, 2))
    np.testing.assert_allclose(square, (2 * HALF_SIDE * SIZE * scales) ** 2, rtol=0.01)
    for shape in (1, 2):
        area = sprites(shape, scale=scales, orientation=0.7).sum(axis=(1, 2))
        assert np.all(np.diff(area) > 0)
        np.testing.assert_allclose(area / area[-1], scales**2, rtol=0.04)


def test_shapes_differ():
    imgs = sprites(np.arange(3), orientation=0.4)
    for a in range(3):
        for b in range(a + 1, 3):
            assert np.abs(imgs[a] - imgs[b]).sum() > 0.15 * imgs[a].sum(), (SHAPES[a], SHAPES[b])


def test_rotation_turns_a_square_and_keeps_ellipse_area():
    angles = np.arange(40) * 2 * math.pi / 40
    squares = sprites(0, orientation=angles)
    assert np.abs(squares[0] - squares[5]).sum() > 20  # 45 degrees
    np.testing.assert_allclose(squares[10], squares[0], atol=1 / 255)  # 90 degrees: the same square
    np.testing.assert_allclose(squares.sum(axis=(1, 2)), squares[0].sum(), rtol=0.01)
    ellipses = sprites(1, orientation=angles)
    assert np.abs(ellipses[0] - ellipses[10]).sum() > 50
    np.testing.assert_allclose(ellipses.sum(axis=(1, 2)), ellipses[0].sum(), rtol=0.01)


def test_sprites_are_binary_and_stay_inside_the_frame():
    corners = np.array([0.0, 1.0])
    imgs = sprites(np.arange(3)[:, None, None], 1.0, np.arange(40)[None, :, None] * math.pi / 20, corners, corners)
    border = np.concatenate([imgs[:, 0], imgs[:, -1], imgs[:, :, 0], imgs[:, :, -1]], axis=1)
    assert border.max() == 0.0
    pixels = load_shapes(split="train", n=300).images
    assert np.isin(pixels, (0, 255)).mean() > 0.98


def test_heart_points_down():
    heart = sprites(2)[0]
    rows = heart.sum(axis=1)
    lit = np.flatnonzero(rows)
    top, bottom = heart[lit[1]], heart[lit[-2]]  # widest near the lobes, a single tip at the bottom
    assert top.sum() > 3 * bottom.sum()


def test_determinism_and_seeds():
    a, b = load_shapes(split="train", n=200, seed=3), load_shapes(split="train", n=200, seed=3)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.factors, b.factors)
    c = load_shapes(split="train", n=200, seed=4)
    assert (a.factors != c.factors).any(axis=1).mean() > 0.9


def test_splits_are_independent_and_disjoint():
    grid = shapes_factor_grid()
    train = load_shapes(split="train", n=3000, size=32)
    test = load_shapes(split="test", n=500, size=32)
    assert not set(grid.indices(train.factors)) & set(grid.indices(test.factors))
    both = load_shapes(split=None, n=100, size=32)
    assert len(both) == 100 and both.split is None
    np.testing.assert_array_equal(both.factors[:90], train.factors[:90])
    np.testing.assert_array_equal(both.factors[90:], test.factors[:10])
    np.testing.assert_array_equal(both.images[90:], test.images[:10])


def test_imageset_contract_and_loader():
    s = load("shapes", split="test", n=7, size=32, channels=3)
    assert s.name == "shapes" and s.split == "test" and s.images.shape == (7, 3, 32, 32)
    np.testing.assert_array_equal(s.images[:, 0], s.images[:, 2])
    assert s.factor_names == FACTOR_NAMES and s.factor_values == {"shape": SHAPES}
    assert s.is_discrete("shape") and not s.is_discrete("scale")
    assert split_counts(None, None, DEFAULT_SIZES) == {"train": 50_000, "test": 5_000}
    assert split_counts("test", 12, DEFAULT_SIZES) == {"test": 12}


def test_other_sizes_scale_the_geometry():
    pos = np.linspace(0.0, 1.0, 8)
    cx, _ = centroid(sprites(0, pos_x=pos, size=32))
    np.testing.assert_allclose(cx, sprite_centres(pos, 32), atol=0.05)
    area = sprites(0, size=128).sum()
    np.testing.assert_allclose(area, (2 * HALF_SIDE * 128) ** 2, rtol=0.01)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: load_shapes(split="val"), "split"),
        (lambda: load_shapes(seed=-1), "seed"),
        (lambda: load_shapes(n=10, channels=2), "channels"),
        (lambda: load_shapes(n=10, size=8), "size"),
        (lambda: render_shapes(np.zeros((2, 4))), "factors must be"),
        (lambda: render_shapes(np.array([[3, 1, 0, 0, 0]])), "shape"),
        (lambda: render_shapes(np.array([[0, 1.5, 0, 0, 0]])), "scale"),
        (lambda: render_shapes(np.array([[0, 1, 0, 1.2, 0]])), "pos_x"),
        (lambda: render_shapes(np.array([[0, 1, np.nan, 0, 0]])), "orientation"),
        (lambda: render_shapes_by_index(np.array([737_280])), "indices"),
        (lambda: render_shapes_by_index(np.array([0.5])), "indices"),
        (lambda: shapes_factor_grid().indices(np.zeros((2, 3))), "factors must be"),
    ],
)
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_coverage_and_distances_known_answers():
    # a vertical edge at x = 0: a pixel centred on it is half covered, one pixel away fully in / out
    x = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0])
    torch.testing.assert_close(coverage(x.clone()), torch.tensor([1.0, 1.0, 0.5, 0.0, 0.0]))
    torch.testing.assert_close(sd_box(torch.tensor([3.0]), torch.tensor([0.0]), 1.0, 1.0), torch.tensor([2.0]))
    tip, lobe_top = sd_heart(torch.zeros(1), torch.zeros(1)), sd_heart(torch.tensor([0.25]), torch.tensor([1.104]))
    torch.testing.assert_close(tip, torch.zeros(1), atol=1e-6, rtol=0)
    torch.testing.assert_close(lobe_top, torch.zeros(1), atol=1e-3, rtol=0)
    assert runs(np.array([1, 1, 0, 1, 0, 0, 1], dtype=bool)) == [slice(0, 2), slice(3, 4), slice(6, 7)]
    assert runs(np.zeros(3, dtype=bool)) == []


def test_rendering_leaves_torch_threads_as_it_found_them():
    before = torch.get_num_threads()
    render_shapes(np.array([[0, 1.0, 0.0, 0.5, 0.5]]))
    assert torch.get_num_threads() == before
