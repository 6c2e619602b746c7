"""PCA compression baseline: exact on data in a linear subspace, non-increasing in k."""
from __future__ import annotations

import numpy as np
import pytest

from latentspace.metrics import compression
from latentspace.metrics.compression import PCA_COMPONENTS, CompressionCurve, pca_curve


def _subspace_images(n, rank, seed, shape=(1, 8, 8)):
    """uint8 images lying exactly in a rank-dimensional affine subspace: a base image plus integer multiples of
    `rank` 0/1 patterns (so every pixel is an exact integer, no rounding leaves the subspace)."""
    pixels = int(np.prod(shape))
    patterns = np.random.default_rng(100).integers(0, 2, (rank, pixels))  # fixed: train and test share the subspace
    coeffs = np.random.default_rng(seed).integers(0, 20, (n, rank))
    x = 40 + coeffs @ patterns  # <= 40 + 19 * rank
    assert x.max() <= 255
    return x.astype(np.uint8).reshape(n, *shape)


def test_subspace_data_is_exact_from_its_rank_on():
    rank = 4
    train, test = _subspace_images(500, rank, 0), _subspace_images(200, rank, 1)
    curve = pca_curve(train, test, components=(1, 2, 3, 4, 6, 8))
    assert curve.components == (1, 2, 3, 4, 6, 8)
    mse = np.array(curve.mse)
    assert (mse[:3] > 1e-4).all()  # fewer components than the rank cannot be exact
    np.testing.assert_allclose(mse[3:], 0.0, atol=1e-10)
    assert curve.mean_image_mse > mse[0]


def test_curve_is_non_increasing_and_below_the_mean_image():
    rng = np.random.default_rng(2)
    smooth = np.cumsum(rng.standard_normal((700, 3, 8, 8)), axis=-1)  # correlated pixels, like images
    images = np.clip(128 + 20 * smooth, 0, 255).astype(np.uint8)
    curve = pca_curve(images[:500], images[500:])
    assert curve.components == PCA_COMPONENTS
    mse = np.array(curve.mse)
    assert (np.diff(mse) <= 0).all()
    assert mse[0] < curve.mean_image_mse
    assert mse[-1] < 0.5 * curve.mean_image_mse


def test_mean_image_mse_is_the_test_variance_around_the_train_mean():
    train = np.zeros((10, 1, 2, 2), np.uint8)
    train[::2] = 102  # mean 51/255 = 0.2 everywhere
    test = np.zeros((4, 1, 2, 2), np.uint8)  # 0.2 away from the train mean everywhere
    curve = pca_curve(train, test, components=(1,))
    assert curve.mean_image_mse == pytest.approx(0.04)


def test_components_are_capped_by_the_training_set():
    train, test = _subspace_images(6, 2, 0), _subspace_images(5, 2, 1)
    curve = pca_curve(train, test, components=(1, 4, 16, 64))
    assert curve.components == (1, 4, 6)  # 6 training images: k <= 6


def test_components_to_match():
    curve = CompressionCurve(components=(1, 2, 4, 8), mse=(0.05, 0.03, 0.02, 0.01), mean_image_mse=0.08)
    assert curve.components_to_match(0.04) == 2
    assert curve.components_to_match(0.03) == 2  # equal counts as matched
    assert curve.components_to_match(0.5) == 1
    assert curve.components_to_match(0.001) is None  # even 8 components are worse


def test_training_images_are_bounded_by_pixel_budget(monkeypatch):
    monkeypatch.setattr(compression, "MAX_TRAIN_VALUES", 64 * 10)  # 10 images of 64 pixels
    train, test = _subspace_images(100, 12, 0), _subspace_images(20, 12, 1)
    curve = pca_curve(train, test, components=(4, 32))
    assert curve.components == (4, 10)


def test_bad_images_are_named():
    x = np.zeros((3, 1, 4, 4), np.uint8)
    with pytest.raises(ValueError, match=r"train images must be uint8 \(N, C, H, W\), got float64"):
        pca_curve(x.astype(np.float64), x)
    with pytest.raises(ValueError, match=r"train images are \(1, 4, 4\), test images \(1, 4, 5\)"):
        pca_curve(x, np.zeros((3, 1, 4, 5), np.uint8))
