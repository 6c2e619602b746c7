"""Structural similarity (SSIM; Wang, Bovik, Sheikh and Simoncelli 2004) of images against their references.

The standard form: a Gaussian window (11 taps, sigma 1.5) slides over each channel without padding; at every
position the local means, variances and covariance give

    SSIM = (2 mu_x mu_y + C1) (2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1) (sigma_x^2 + sigma_y^2 + C2)),

C1 = (0.01 L)^2, C2 = (0.03 L)^2 with L = 1 (pixels on [0, 1]); an image's SSIM is the mean over positions and
channels. 1 for identical images, near 0 for unrelated ones (it can dip below 0). Images narrower than the window
get the largest odd window that fits (``window_size``), so every value is a true windowed SSIM.

The numbers are pytorch-msssim's ``ssim`` (size_average=False; its window built in float32), computed in float64
in batches. The separable Gaussian's valid convolution is written as two matrix products with banded matrices
(``G_h^T X G_w``), which runs 2,000 RGB 64 px pairs in well under a second on 2 cores; pytorch-msssim's grouped
float64 convolutions took 7 s, a tenth of a 64 px `evaluate`. tests/test_structure.py checks the two agree.
"""
from __future__ import annotations

import numpy as np
import torch

WINDOW = 11
SIGMA = 1.5
BATCH = 256
K1, K2 = 0.01, 0.03  # the constants' factors of the data range (1)


def window_size(height: int, width: int, window: int = WINDOW) -> int:
    """The Gaussian window used for (height, width) images: ``window`` when it fits, else the largest odd size
    that does (5 for 5x6 images); images need at least 3x3 pixels (a 3-tap window)."""
    if height < 3 or width < 3:
        raise ValueError(f"SSIM needs images of at least 3x3 pixels, got {height}x{width}")
    if window < 3 or window % 2 == 0:
        raise ValueError(f"window must be an odd number of pixels >= 3, got {window}")
    side = min(window, height, width)
    return side if side % 2 == 1 else side - 1


def _tensor(images: np.ndarray, which: str) -> torch.Tensor:
    a = np.asarray(images)
    if a.ndim != 4:
        raise ValueError(f"{which} must be (N, C, H, W), got shape {a.shape}")
    if a.dtype == np.uint8:
        return torch.from_numpy(a).double() / 255.0
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"{which} must be uint8 or float in [0, 1], got dtype {a.dtype}")
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


def ssim(
    images: np.ndarray, references: np.ndarray, window: int = WINDOW, sigma: float = SIGMA, batch_size: int = BATCH
) -> np.ndarray:
    """(N,) float64 SSIM of each image against its reference (see the module docstring). images, references:
    (N, C, H, W) of one shape, uint8 or float in [0, 1]; data range 1."""
    x, y = _tensor(images, "images"), _tensor(references, "references")
    if x.shape != y.shape:
        raise ValueError(f"images {tuple(x.shape)} and references {tuple(y.shape)} must have the same shape")
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0 pixels, got {sigma}")
    win = window_size(x.shape[2], x.shape[3], window)
    band_h, band_w = _band(x.shape[2], win, sigma), _band(x.shape[3], win, sigma)
    out = np.empty(len(x))
    for i in range(0, len(x), batch_size):
        out[i : i + batch_size] = _ssim(x[i : i + batch_size], y[i : i + batch_size], band_h, band_w).numpy()
    return out


def _band(n: int, win: int, sigma: float) -> torch.Tensor:
    """(n, n - win + 1) float64 whose column j holds the normalised Gaussian window on rows j..j + win - 1: ``t @ band``
    is the window's valid convolution along t's last axis. The window is built in float32, as pytorch-msssim's."""
    taps = torch.arange(win, dtype=torch.float32) - win // 2
    g = torch.exp(-(taps**2) / (2 * sigma**2))
    g = (g / g.sum()).double()
    band = torch.zeros(n, n - win + 1, dtype=torch.float64)
    for j in range(n - win + 1):
        band[j : j + win, j] = g
    return band


def _ssim(x: torch.Tensor, y: torch.Tensor, band_h: torch.Tensor, band_w: torch.Tensor) -> torch.Tensor:
    """(B,) SSIM of float64 (B, C, H, W) pairs: local moments by the banded filters, the map averaged."""
    def blur(t: torch.Tensor) -> torch.Tensor:
        return band_h.T @ t @ band_w

    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y, cov = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2, blur(x * y) - mu_x * mu_y
    c1, c2 = K1**2, K2**2
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    contrast_structure = (2 * cov + c2) / (var_x + var_y + c2)
    return (luminance * contrast_structure).flatten(2).mean(-1).mean(1)


def mean_ssim(images: np.ndarray, references: np.ndarray, window: int = WINDOW, sigma: float = SIGMA) -> float:
    """The mean over images of ``ssim``: one number for the whole set."""
    values = ssim(images, references, window, sigma)
    if len(values) == 0:
        raise ValueError("mean_ssim needs at least one image, got 0")
    return float(values.mean())
