"""Sharpness as the high-frequency share of an image's spectrum.

A blurred image (a VAE's average of plausible reconstructions, a smooth decoded path) has less of its power at
high spatial frequencies than a real one; a cross-fade of two sharp images keeps both images' edges. For each
image, every channel minus its own mean goes through a 2-D FFT; the share is the power at radial frequency above
``cutoff`` times the Nyquist frequency (default half of it), over all the power (the DC term is zero after the mean
is removed; the channels' powers are added before the ratio):

    share = sum_{r(f) > cutoff} |F(f)|^2 / sum_f |F(f)|^2,   r(f) = sqrt(fy^2 + fx^2) / 0.5  (cycles per pixel)

so r = 1 is the Nyquist frequency along an axis (corners of the spectrum reach sqrt(2)). White noise has a flat
spectrum, so its share is the fraction of the non-DC frequency bins above the cutoff: ``1 - pi / 16`` ~= 0.80 for
the default cutoff in the continuous limit (a disc of radius 0.25 inside the unit square). A flat image has no
power at all; its share is defined as 0 (nothing sharp in it).

``hf_ratio(images, real)``: the set's mean share over the real images' mean share: 1 for a set as sharp as the
data, below 1 for blurrier images, above 1 for noisier ones.
"""
from __future__ import annotations

import numpy as np

HALF_NYQUIST = 0.5  # the default cutoff, as a fraction of the Nyquist frequency
CHUNK_VALUES = 1 << 22  # pixel values transformed at once (4M complex128 = 64 MB)


def _as_float(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) uint8 or float in [0, 1] -> float64 (N, C, H, W) on [0, 1] intensities."""
    a = np.asarray(images)
    if a.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {a.shape}")
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"images must be uint8 or float in [0, 1], got dtype {a.dtype}")
    return a.astype(np.float64, copy=False)


def high_frequency_mask(height: int, width: int, cutoff: float = HALF_NYQUIST) -> np.ndarray:
    """(H, W) bool, in np.fft.fft2's layout: the frequency bins whose radius exceeds ``cutoff`` x Nyquist."""
    if height < 1 or width < 1:
        raise ValueError(f"images must be at least 1x1 pixels, got {height}x{width}")
    if not 0.0 <= cutoff < 2**0.5:
        raise ValueError(f"cutoff must be in [0, sqrt(2)) times the Nyquist frequency, got {cutoff}")
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    return np.sqrt(fy**2 + fx**2) / 0.5 > cutoff


def hf_shares(images: np.ndarray, cutoff: float = HALF_NYQUIST) -> np.ndarray:
    """(N,) float64 in [0, 1]: each image's share of spectral power above ``cutoff`` x Nyquist (see the module
    docstring). images: (N, C, H, W) uint8, or float in [0, 1]; flat images score 0."""
    x = _as_float(images)
    n, c, h, w = x.shape
    mask = high_frequency_mask(h, w, cutoff)
    out = np.empty(n)
    step = max(1, CHUNK_VALUES // max(c * h * w, 1))
    for start in range(0, n, step):
        block = x[start : start + step]
        block = block - block.mean(axis=(2, 3), keepdims=True)
        power = np.abs(np.fft.fft2(block)) ** 2  # (B, C, H, W)
        power = power.sum(axis=1)  # channels added: one spectrum per image
        total = power.sum(axis=(1, 2))
        high = power[:, mask].sum(axis=1)
        out[start : start + step] = np.divide(high, total, out=np.zeros_like(high), where=total > 0)
    return out


def hf_share(images: np.ndarray, cutoff: float = HALF_NYQUIST) -> float:
    """The mean over images of ``hf_shares``: one number in [0, 1] for the whole set."""
    shares = hf_shares(images, cutoff)
    if len(shares) == 0:
        raise ValueError("hf_share needs at least one image, got 0")
    return float(shares.mean())


def hf_ratio(images: np.ndarray, real: np.ndarray, cutoff: float = HALF_NYQUIST) -> float:
    """hf_share(images) / hf_share(real): 1 = as sharp as the real images, < 1 blurrier, > 1 noisier.
    ValueError when the real images have no high-frequency power at all (nothing to compare against)."""
    reference = hf_share(real, cutoff)
    if reference <= 0.0:
        raise ValueError("the real images have no power above the cutoff (flat images?); hf_ratio is undefined")
    return hf_share(images, cutoff) / reference
