"""A linear baseline for reconstruction: how many principal components match an autoencoder's test error?

PCA is fitted on the training images' pixels in [0, 1]; each test image is projected on the first k components and
reconstructed, and the mean squared error per pixel is recorded for every k. An autoencoder whose test MSE per
pixel is m "is worth" ``curve.components_to_match(m)`` linear components; the mean image alone (k = 0) is the floor
every model must beat.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA

from latentspace.data import ImageSet
from latentspace.data.transforms import batch_rows
from latentspace.latent.codes import decode_latents, encode_images
from latentspace.models import Autoencoder
from latentspace.utils.memory import release_pages

PCA_COMPONENTS = (1, 2, 4, 8, 16, 32, 64)
MAX_TRAIN_VALUES = 1 << 26  # pixel values PCA is fitted on at most (256 MB as float32): 5461 faces at 64 px
TEST_CHUNK = 1024  # test images projected at once, at most
TEST_CHUNK_VALUES = 1 << 22  # and at most this many pixel values (32 MB in float64) per chunk


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
    max_train: int = 20_000, seed: int = 0, max_values: int | None = None,
) -> CompressionCurve:
    """Test MSE per pixel of PCA reconstructions from each number of components; images uint8 (N, C, H, W).

    PCA (randomized SVD, seeded) is fitted once with the largest k on at most ``max_train`` training images, and
    at most ``max_values`` // pixels of them (default MAX_TRAIN_VALUES) (a seeded subsample; 5461 for 64-px RGB faces), so memory stays
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
    n_fit = min(len(train_images), max_train, max(1, (max_values or MAX_TRAIN_VALUES) // n_pixels))
    if n_fit < len(train_images):
        source = train_images
        train_images = train_images[np.sort(rng.choice(len(train_images), n_fit, replace=False))]
        release_pages(source)  # a memory-mapped split: the rows just copied need not stay resident
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
    chunk = max(1, min(TEST_CHUNK, TEST_CHUNK_VALUES // n_pixels))
    for start in range(0, len(test_images), chunk):
        centred = _pixels(test_images[start:start + chunk]).astype(np.float64) - mean
        total += float(np.sum(centred**2))
        cumulative = np.cumsum(np.sum((centred @ basis.T) ** 2, axis=0))  # (K,) energy in the first 1..K
        captured += cumulative[np.asarray(ks) - 1]
    n_values = len(test_images) * n_pixels
    mse = tuple(float(max(total - c, 0.0) / n_values) for c in captured)
    return CompressionCurve(components=ks, mse=mse, mean_image_mse=total / n_values)


# -- the comparison `latentspace train` prints after every run: a model worse than PCA with as many components as
# it has latent dimensions has learned less than a linear projection would, and users should see that at once.
BASELINE_TRAIN_VALUES = 1 << 24  # 4,096 grey or 1,365 RGB images at 64 px: a baseline, cheap beside training
MAX_BASELINE_TEST = 5000   # test images compared at most (seeded subsample): the comparison takes seconds, not minutes


@dataclass(frozen=True)
class Baseline:
    """Test MSE per pixel (pixels in [0, 1]) of the model's posterior-mean reconstruction, of PCA with
    ``components`` components and of the training mean image, over ``n_test`` test images."""

    model_mse: float
    pca_mse: float
    mean_mse: float
    components: int
    n_test: int

    @property
    def beats_pca(self) -> bool:
        return self.model_mse <= self.pca_mse

    def verdict(self) -> str:
        ratio = self.model_mse / max(self.pca_mse, 1e-12)
        if self.beats_pca:
            return (f"reconstruction: no worse than PCA with {self.components} components "
                    f"(test MSE {ratio:.2f}x PCA's)")
        return (f"reconstruction: WORSE than PCA with {self.components} components (test MSE {ratio:.2f}x PCA's); "
                "train longer (--epochs), or try --likelihood gaussian")


def against_pca(model: Autoencoder, train: ImageSet, test: ImageSet, seed: int = 0) -> Baseline:
    """Measure the model (in eval mode for the measurement; its mode is restored) against PCA on the run's data."""
    rng = np.random.default_rng(seed)
    n = len(test)
    index = np.sort(rng.choice(n, MAX_BASELINE_TEST, replace=False)) if n > MAX_BASELINE_TEST else slice(None)
    images = np.asarray(test.images[index])
    k = int(model.config.latent_dim)
    curve = pca_curve(train.images, images, components=(k,), max_train=20_000, seed=seed,
                      max_values=BASELINE_TRAIN_VALUES)
    batch = batch_rows(images.shape[1:])
    with torch.inference_mode():
        recon = decode_latents(model, encode_images(model, images, batch_size=batch), batch_size=batch)
    squares = sum(int(np.sum((recon[s:s + batch].astype(np.int32) - images[s:s + batch]) ** 2))  # exact, small
                  for s in range(0, len(images), batch))
    model_mse = squares / (images.size * 255.0**2)
    return Baseline(model_mse, curve.mse[0], curve.mean_image_mse, curve.components[0], len(images))
