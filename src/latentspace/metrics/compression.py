"""A linear baseline for reconstruction: how many principal components match an autoencoder's test error?

PCA is fitted on the training images' pixels in [0, 1]; each test image is projected on the first k components and
reconstructed, and the mean squared error per pixel is recorded for every k. An autoencoder whose test MSE per
pixel is m "is worth" ``curve.components_to_match(m)`` linear components; the mean image alone (k = 0) is the floor
every model must beat.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA

PCA_COMPONENTS = (1, 2, 4, 8, 16, 32, 64)
MAX_TRAIN_VALUES = 1 << 26  # pixel values PCA is fitted on at most (256 MB as float32): 5461 faces at 64 px
TEST_CHUNK = 1024  # test images projected at once


@dataclass(frozen=True)
class CompressionCurve:
    """components: the k's used (ascending, each capped at min(n_train, pixels)); mse: test MSE per pixel of the
    k-component reconstruction, pixels in [0, 1] (so in [0, 1]), one per k; mean_image_mse: test MSE per pixel of
    the training mean image alone."""

    components: tuple[int, ...]
    mse: tuple[float, ...]
    mean_image_mse: float

    def components_to_match(self, mse: float) -> int | None:
        """Smallest k whose PCA test MSE per pixel is <= ``mse``; None when even the largest k is worse."""
        for k, m in zip(self.components, self.mse):
            if m <= mse:
                return k
        return None


def _check(images: np.ndarray, split: str) -> None:
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"{split} images must be uint8 (N, C, H, W), got {images.dtype} {images.shape}")
    if len(images) == 0:
        raise ValueError(f"{split} images: none given; expected at least one")


def _pixels(images: np.ndarray) -> np.ndarray:
    """uint8 (N, C, H, W) -> float32 (N, C*H*W) in [0, 1]."""
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def pca_curve(
    train_images: np.ndarray, test_images: np.ndarray, components=PCA_COMPONENTS,
    max_train: int = 20_000, seed: int = 0,
) -> CompressionCurve:
    """Test MSE per pixel of PCA reconstructions from each number of components; images uint8 (N, C, H, W).

    PCA (randomized SVD, seeded) is fitted once with the largest k on at most ``max_train`` training images, and
    at most MAX_TRAIN_VALUES // pixels of them (a seeded subsample; 5461 for 64-px RGB faces), so memory stays
    bounded. The reconstruction from k components uses the first k, which is what a fit with k would give up
    to the randomized solver's accuracy. k is capped at min(n_train, pixels); repeated k's are dropped.
    Test images are projected in chunks of TEST_CHUNK.
    """
    train_images, test_images = np.asarray(train_images), np.asarray(test_images)
    _check(train_images, "train")
    _check(test_images, "test")
    if train_images.shape[1:] != test_images.shape[1:]:
        raise ValueError(f"train images are {train_images.shape[1:]}, test images {test_images.shape[1:]}; "
                         "expected one (C, H, W)")
    ks = tuple(int(k) for k in components)
    if not ks or min(ks) < 1:
        raise ValueError(f"components = {ks}; expected one or more positive counts")
    if max_train < 1:
        raise ValueError(f"max_train = {max_train}; expected at least 1")
    n_pixels = int(np.prod(train_images.shape[1:]))
    rng = np.random.default_rng(seed)
    n_fit = min(len(train_images), max_train, max(1, MAX_TRAIN_VALUES // n_pixels))
    if n_fit < len(train_images):
        train_images = train_images[np.sort(rng.choice(len(train_images), n_fit, replace=False))]
    train = _pixels(train_images)
    cap = min(len(train), n_pixels)
    ks = tuple(sorted({min(k, cap) for k in ks}))
    pca = PCA(n_components=ks[-1], svd_solver="randomized", random_state=int(rng.integers(2**31)))
    pca.fit(train)
    mean = pca.mean_.astype(np.float64)
    # Re-orthonormalised in float64 (QR keeps the span of every leading block of rows), so that the energy
    # identity below holds to float64 precision rather than the float32 fit's.
    basis = np.linalg.qr(pca.components_.astype(np.float64).T)[0].T  # (K, P), orthonormal rows
    # ||x - mean||^2 - ||projection on the first k||^2 is the squared error of the k-component reconstruction.
    total = 0.0
    captured = np.zeros(len(ks))
    for start in range(0, len(test_images), TEST_CHUNK):
        centred = _pixels(test_images[start:start + TEST_CHUNK]).astype(np.float64) - mean
        total += float(np.sum(centred**2))
        cumulative = np.cumsum(np.sum((centred @ basis.T) ** 2, axis=0))  # (K,) energy in the first 1..K
        captured += cumulative[np.asarray(ks) - 1]
    n_values = len(test_images) * n_pixels
    mse = tuple(float(max(total - c, 0.0) / n_values) for c in captured)
    return CompressionCurve(components=ks, mse=mse, mean_image_mse=total / n_values)
