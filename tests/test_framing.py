"""The framing score (metrics.framing): image moments with known answers, and the Gaussian over them telling a
set's framing from a shifted or flipped copy."""
from __future__ import annotations

import numpy as np
import pytest

from latentspace.metrics.framing import MOMENTS, FramingModel, image_moments
from latentspace.metrics.separation import auroc


def blobs(n: int, seed: int, row_shift: float = 0.0, slant: float = 0.6) -> np.ndarray:
    """uint8 (n, 1, 28, 28) slanted Gaussian blobs centred at 14 +- 0.3 px (MNIST's framing), moved down by
    ``row_shift`` px; a positive ``slant`` leans them like MNIST's right-leaning strokes."""
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[0:28, 0:28] + 0.5
    out = np.empty((n, 1, 28, 28), np.uint8)
    for i in range(n):
        cr, cc = 14 + rng.normal(0, 0.3) + row_shift, 14 + rng.normal(0, 0.3)
        s = slant + rng.normal(0, 0.1)
        cov_inv = np.linalg.inv(np.array([[16.0, 16.0 * s], [16.0 * s, 16.0]]) * rng.uniform(0.8, 1.2))
        d = np.stack([r - cr, c - cc])
        ink = 235 * np.exp(-0.5 * np.einsum("ihw,ij,jhw->hw", d, cov_inv, d)) + rng.uniform(0, 4, (28, 28))
        out[i, 0] = np.round(ink)
    return out


def test_moments_of_a_single_pixel_and_a_black_image():
    image = np.zeros((2, 1, 10, 20), np.uint8)
    image[0, 0, 3, 7] = 255
    m = image_moments(image)
    assert m.shape == (2, 1 + len(MOMENTS))
    # ink 1/200 of the image; centre of pixel (3, 7) in units of the side; no spread, no slant
    np.testing.assert_allclose(m[0], [1 / 200, 3.5 / 10, 7.5 / 20, 0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(m[1], [0, 0.5, 0.5, 0, 0, 0])


def test_moments_see_slant_sign_channels_and_a_flip():
    diagonal = np.zeros((1, 3, 8, 8), np.uint8)
    diagonal[0, 0][np.arange(8), np.arange(8)] = 255  # red, top-left to bottom-right
    m = image_moments(diagonal)[0]
    np.testing.assert_allclose(m[:3], [8 / 64, 0, 0])
    assert m[-1] > 0 and m[3] == m[4] == pytest.approx(0.5)
    flipped = image_moments(np.ascontiguousarray(diagonal[:, :, ::-1]))[0]
    assert flipped[-1] == pytest.approx(-m[-1])
    # many images in chunks give what one call on each gives
    many = np.random.default_rng(0).integers(0, 256, (4100, 1, 4, 4), dtype=np.uint8)
    np.testing.assert_allclose(image_moments(many)[[0, 2048, 4099]], image_moments(many[[0, 2048, 4099]]))
    with pytest.raises(ValueError, match="uint8 images"):
        image_moments(np.zeros((1, 8, 8), np.uint8))


def test_training_images_score_about_the_number_of_moments():
    train = blobs(400, seed=0)
    model = FramingModel.fit(train)
    # the mean squared Mahalanobis distance of the fitted sample under its own covariance is M (N - 1) / N
    assert model.score(train).mean() == pytest.approx(len(model.mean) * 399 / 400, rel=1e-3)


def test_a_one_pixel_shift_or_a_flip_breaks_the_framing():
    model = FramingModel.fit(blobs(400, seed=0))
    typical = model.score(blobs(200, seed=1))
    threshold = np.percentile(typical, 99)
    assert (typical <= threshold).mean() >= 0.99
    shifted = model.score(blobs(200, seed=1, row_shift=-1.0))
    flipped = model.score(np.ascontiguousarray(blobs(200, seed=1)[:, :, ::-1]))
    assert auroc(typical, shifted) > 0.9 and np.median(shifted) > np.percentile(typical, 90)
    assert (flipped > threshold).mean() > 0.99  # the slant changes sign
    assert auroc(typical, model.score(blobs(200, seed=2))) < 0.6  # the same framing, other images


def test_round_trip_and_refusals():
    model = FramingModel.fit(blobs(50, seed=0))
    again = FramingModel.from_dict(model.to_dict())
    images = blobs(5, seed=3)
    np.testing.assert_array_equal(again.score(images), model.score(images))
    with pytest.raises(ValueError, match="3 channels, the framing model was fitted to 1"):
        model.score(np.zeros((2, 3, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="at least 2"):
        FramingModel.fit(blobs(1, seed=0))
    with pytest.raises(ValueError, match="finite precision"):
        FramingModel.from_dict({"mean": [0.0, 1.0], "precision": [[1.0, float("nan")], [0.0, 1.0]]})
    # a set whose moments never vary (every image black) still fits: the ridge keeps the precision finite
    constant = FramingModel.fit(np.zeros((10, 1, 8, 8), np.uint8))
    assert np.isfinite(constant.precision).all() and constant.score(np.zeros((1, 1, 8, 8), np.uint8))[0] == 0.0
