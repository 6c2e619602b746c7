"""Framing: does an image sit in its frame the way the training images do?

Real image sets are framed consistently. MNIST digits are scaled into a 20-px box and shifted so that their
centre of mass is the image centre; face sets are aligned on the eyes; product photos are centred on a flat
background. An image can hold a plausible shape and still break that framing, and a generative model with a
blurry decoder barely notices: a digit flipped upside down keeps its strokes, but its centre of mass moves one
pixel up (13.0 rows against 14.0 +- 0.3 for MNIST's test digits) and its slant changes sign.

The framing score is the squared Mahalanobis distance of a few image moments from those of the training
split, under one Gaussian fitted to them: the mean intensity of each channel (how much ink, what colour), the
centre of mass (row, column), the spread about it (row, column) and the row-column covariance (the slant),
all of the channel-mean intensity and in units of the image side. It needs no model, costs one pass over the
pixels, and is one of the scores ``combined`` joins (metrics.ood).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK = 2048  # images per moment batch: bounds the float64 copy (2048 RGB 64-px images: 200 MB)
MOMENTS = ("row", "column", "row spread", "column spread", "slant")  # after one mean intensity per channel
RIDGE = 1e-6  # added to each variance, relative to it (plus 1e-12): a constant moment must not divide by 0


def image_moments(images: np.ndarray) -> np.ndarray:
    """Moments of uint8 images (N, C, H, W) -> (N, C + 5) float64: the mean intensity of each channel in [0, 1],
    then centre of mass (row, column), spread (row, column) and row-column covariance of the channel-mean
    intensity, in units of the side (MOMENTS). A black image has its centre at the middle and zero spread."""
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"image_moments needs uint8 images (N, C, H, W), got {images.dtype} {images.shape}")
    return np.concatenate([_moments(images[i : i + CHUNK]) for i in range(0, len(images), CHUNK)] or
                          [np.zeros((0, images.shape[1] + len(MOMENTS)))])


def _moments(images: np.ndarray) -> np.ndarray:
    x = images.astype(np.float64) / 255.0
    channel_means = x.mean(axis=(2, 3))
    grey = x.mean(axis=1)
    h, w = grey.shape[1:]
    rows, cols = (np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w
    mass = grey.sum(axis=(1, 2))
    safe = np.where(mass > 0, mass, 1.0)
    row_mass, col_mass = grey.sum(axis=2), grey.sum(axis=1)
    r = np.where(mass > 0, row_mass @ rows / safe, 0.5)
    c = np.where(mass > 0, col_mass @ cols / safe, 0.5)
    dr, dc = rows[None, :] - r[:, None], cols[None, :] - c[:, None]
    var_r = (row_mass * dr**2).sum(1) / safe
    var_c = (col_mass * dc**2).sum(1) / safe
    cov = np.einsum("nhw,nh,nw->n", grey, dr, dc) / safe
    return np.column_stack([channel_means, r, c, np.sqrt(var_r), np.sqrt(var_c), cov])


@dataclass(frozen=True)
class FramingModel:
    """One Gaussian over the training images' moments: ``mean`` (M,), ``precision`` (M, M)."""

    mean: np.ndarray
    precision: np.ndarray

    @classmethod
    def fit(cls, images: np.ndarray) -> "FramingModel":
        """Fitted to uint8 training images (N, C, H, W), N >= 2."""
        moments = image_moments(images)
        if len(moments) < 2:
            raise ValueError(f"the framing model needs at least 2 training images, got {len(moments)}")
        cov = np.atleast_2d(np.cov(moments, rowvar=False))
        cov += np.diag(RIDGE * np.diag(cov) + 1e-12)
        return cls(mean=moments.mean(0), precision=np.linalg.inv(cov))

    def score(self, images: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of each image's moments from the training images' -> (N,) float64,
        higher = framed less like the training images (about M, the number of moments, for a typical one)."""
        moments = image_moments(images)
        if moments.shape[1] != len(self.mean):
            raise ValueError(f"images have {images.shape[1]} channels, the framing model was fitted to "
                             f"{len(self.mean) - len(MOMENTS)}")
        d = moments - self.mean
        return np.einsum("ni,ij,nj->n", d, self.precision, d)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "precision": self.precision.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "FramingModel":
        mean, precision = np.asarray(d["mean"], np.float64), np.asarray(d["precision"], np.float64)
        if mean.ndim != 1 or precision.shape != (len(mean), len(mean)) or not np.isfinite(precision).all():
            raise ValueError(f"a framing model needs mean (M,) and a finite precision (M, M), got {mean.shape} "
                             f"and {precision.shape}")
        return cls(mean, precision)
