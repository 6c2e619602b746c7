"""Image grids: where tiles land, scaling, captions, row labels, saving."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from latentspace.viz.grid import LINE_GAP, MIN_CAPTIONED_TILE, _text_height, image_grid, save_image, text_width


def constant_tiles(n: int, c: int = 1, h: int = 4, w: int = 3) -> np.ndarray:
    """Tile i is filled with 10 * (i + 1) so each tile is recognisable in the grid."""
    return np.repeat((10 * np.arange(1, n + 1, dtype=np.uint8))[:, None, None, None], c * h * w, 1).reshape(n, c, h, w)


def test_tiles_land_in_their_cells():
    images = constant_tiles(5)
    grid = np.asarray(image_grid(images, ncols=3, pad=2))
    assert grid.shape == (2 + 2 * (4 + 2), 2 + 3 * (3 + 2))  # (H, W)
    for i in range(5):
        y, x = 2 + (i // 3) * 6, 2 + (i % 3) * 5
        assert (grid[y:y + 4, x:x + 3] == 10 * (i + 1)).all(), i
    mask = np.ones_like(grid, dtype=bool)
    for i in range(5):
        y, x = 2 + (i // 3) * 6, 2 + (i % 3) * 5
        mask[y:y + 4, x:x + 3] = False
    assert (grid[mask] == 255).all()  # padding and the empty sixth cell are white


def test_default_columns_mode_and_real_pixels():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 3, 5, 6), dtype=np.uint8)
    grid = image_grid(images, pad=0)
    assert grid.mode == "RGB" and grid.size == (4 * 6, 3 * 5)  # ceil(sqrt(10)) = 4 columns
    a = np.asarray(grid)
    np.testing.assert_array_equal(a[5:10, 6:12], images[5].transpose(1, 2, 0))  # row 1, column 1
    assert image_grid(images[:, :1]).mode == "L"


def test_scale_repeats_pixels():
    images = np.arange(2 * 1 * 2 * 2, dtype=np.uint8).reshape(2, 1, 2, 2) * 20
    a = np.asarray(image_grid(images, ncols=2, scale=3, pad=1))
    assert a.shape == (1 + 6 + 1, 1 + 2 * 7)
    np.testing.assert_array_equal(a[1:7, 8:14], np.kron(images[1, 0], np.ones((3, 3), np.uint8)))


def test_captions_enlarge_small_tiles_and_add_a_text_strip():
    digits = constant_tiles(4, h=28, w=28)
    plain = image_grid(digits, ncols=2)
    captioned = image_grid(digits, ncols=2, captions=["0", "1", "2", "Ankle boot"])
    scale = -(-MIN_CAPTIONED_TILE // 28)  # 2
    tile = 28 * scale
    assert captioned.width == 2 + 2 * (tile + 2) and plain.width == 2 + 2 * (28 + 2)
    strip = (captioned.height - 2) // 2 - tile - 2
    assert strip > 5  # room for a line of text under each tile
    a = np.asarray(captioned)
    assert (a[2:2 + tile, 2:2 + tile] == 10).all()  # tile 0 is enlarged, not blurred
    for i in range(4):
        y, x = 2 + (i // 2) * (tile + strip + 2) + tile, 2 + (i % 2) * (tile + 2)
        assert a[y:y + strip, x:x + tile].min() < 100, i  # dark text drawn under every tile


def test_row_labels_shift_the_tiles_right():
    images = constant_tiles(4)
    plain = np.asarray(image_grid(images, ncols=2))
    labelled = np.asarray(image_grid(images, ncols=2, row_labels=["alpha", "b"]))
    extra = labelled.shape[1] - plain.shape[1]
    assert extra > 10 and labelled.shape[0] == plain.shape[0]
    np.testing.assert_array_equal(labelled[:, extra:], plain)
    assert labelled[:, :extra].min() < 100  # the labels are drawn


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"images": np.zeros((2, 1, 4, 4), np.float32)}, "uint8 images"),
        ({"images": np.zeros((2, 2, 4, 4), np.uint8)}, "C 1 or 3"),
        ({"images": np.zeros((0, 1, 4, 4), np.uint8)}, "at least one image"),
        ({"images": np.zeros((2, 1, 4, 4), np.uint8), "captions": ["a"]}, "captions has 1 entries for 2 images"),
        ({"images": np.zeros((4, 1, 4, 4), np.uint8), "row_labels": ["a"]}, "row_labels has 1 entries for 2 rows"),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        image_grid(**kwargs)


@pytest.mark.parametrize("suffix, lossless", [(".png", True), (".gif", True), (".jpg", False)])
def test_save_image_by_suffix(tmp_path, suffix, lossless):
    grid = image_grid(constant_tiles(3, h=8, w=8), captions=["a", "b", "c"])
    path = save_image(grid, tmp_path / f"grid{suffix}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"grid{suffix}"]  # no temp files left
    with Image.open(path) as back:
        assert back.size == grid.size
        diff = np.abs(np.asarray(back.convert("L"), dtype=int) - np.asarray(grid, dtype=int))
        assert diff.max() == 0 if lossless else diff.mean() < 3


def test_save_image_refuses_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match="unknown image suffix '.tiff'"):
        save_image(image_grid(constant_tiles(1)), tmp_path / "g.tiff")


def test_multi_line_captions_get_a_taller_strip_with_every_line_drawn():
    tiles = constant_tiles(2, h=60, w=60)
    one = image_grid(tiles, ncols=2, captions=["a", "b"])
    three = image_grid(tiles, ncols=2, captions=["top\nmiddle\nbottom", "b"])
    line = _text_height() + LINE_GAP
    assert three.size == (one.width, one.height + 2 * line)  # the strip fits the caption with most lines
    a = np.asarray(three)
    strip_top = 2 + 60 + 1
    for j in range(3):  # ink in each of the three line bands under tile 0
        assert a[strip_top + j * line:strip_top + (j + 1) * line - 1, 2:62].min() < 100, j
    assert text_width("wide line\nx") == text_width("wide line") > text_width("x")
