"""Shared resize / centre-crop / channel conversion (data/resize.py)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from latentspace.data import resize


def test_fit_square_keeps_the_centre_of_a_wide_image():
    # 30 wide x 10 high: left third red, middle third green, right third blue.
    a = np.zeros((10, 30, 3), dtype=np.uint8)
    a[:, :10, 0], a[:, 10:20, 1], a[:, 20:, 2] = 255, 255, 255
    out = np.asarray(resize.fit_square(Image.fromarray(a), 10))
    assert out.shape == (10, 10, 3)
    np.testing.assert_array_equal(out, a[:, 10:20])  # shorter side already 10: a pure centre crop


def test_fit_square_scales_the_shorter_side():
    a = np.zeros((40, 20), dtype=np.uint8)
    a[:6], a[34:] = 200, 100  # far outside the centre square (rows 10-30), beyond the filter's reach
    out = np.asarray(resize.fit_square(Image.fromarray(a), 10))
    assert out.shape == (10, 10)
    assert out.max() == 0


def test_fit_square_equals_resize_then_crop():
    a = np.random.default_rng(3).integers(0, 256, (40, 20), dtype=np.uint8)
    whole = Image.fromarray(a).resize((10, 20), Image.Resampling.BILINEAR)
    expected = np.asarray(whole.crop((0, 5, 10, 15))).astype(int)
    got = np.asarray(resize.fit_square(Image.fromarray(a), 10)).astype(int)
    assert np.abs(got - expected).max() <= 1  # fixed-point rounding differs by at most one level


def test_rgb_to_grey_matches_pil():
    rgb = np.random.default_rng(0).integers(0, 256, (3, 3, 8, 8), dtype=np.uint8)
    grey = resize.rgb_to_grey(rgb)
    for i in range(3):
        expected = np.asarray(Image.fromarray(rgb[i].transpose(1, 2, 0)).convert("L"))
        np.testing.assert_array_equal(grey[i, 0], expected)


def test_convert_channels_and_is_grey():
    grey = np.random.default_rng(1).integers(0, 256, (2, 1, 4, 4), dtype=np.uint8)
    rgb = resize.convert_channels(grey, 3)
    assert rgb.shape == (2, 3, 4, 4) and resize.is_grey(rgb)
    np.testing.assert_array_equal(resize.convert_channels(rgb, 1), grey)  # luma of (v, v, v) is v
    rgb[1, 2, 0, 0] ^= 1
    assert not resize.is_grey(rgb)
    assert resize.convert_channels(grey, 1) is grey


def test_resize_images_per_channel():
    images = np.random.default_rng(2).integers(0, 256, (2, 3, 8, 8), dtype=np.uint8)
    out = resize.resize_images(images, 4)
    expected = Image.fromarray(images[1, 2]).resize((4, 4), Image.Resampling.BILINEAR)
    assert out.shape == (2, 3, 4, 4)
    np.testing.assert_array_equal(out[1, 2], np.asarray(expected))


def test_to_rgb_lays_transparency_over_white():
    rgba = Image.new("RGBA", (2, 1), (10, 20, 30, 0))
    rgba.putpixel((1, 0), (10, 20, 30, 255))
    np.testing.assert_array_equal(np.asarray(resize.to_rgb(rgba)), [[[255, 255, 255], [10, 20, 30]]])


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_check_size_refuses(bad):
    with pytest.raises(ValueError, match="size must be a positive number"):
        resize.check_size(bad)
