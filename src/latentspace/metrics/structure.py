"""Structural similarity (SSIM; Wang, Bovik, Sheikh and Simoncelli 2004) of images against their references.

The standard form: a Gaussian window (11 taps, sigma 1.5) slides over each channel without padding; at every
position the local means, variances and covariance give

    SSIM = (2 mu_x mu_y + C1) (2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1) (sigma_x^2 + sigma_y^2 + C2)),

C1 = (0.01 L)^2, C2 = (0.03 L)^2 with L = 1 (pixels on [0, 1]); an image's SSIM is the mean over positions and
channels. 1 for identical images, near 0 for unrelated ones (it can dip below 0). Images narrower than the window
get the largest odd window that fits (``window_size``), so every value is a true windowed SSIM. The computation
is pytorch-msssim's ``ssim`` (size_average=False), in float64 (its window built in float32), in batches.
"""
from __future__ import annotations

import numpy as np
import torch
from pytorch_msssim import ssim as _msssim_ssim

WINDOW = 11
SIGMA = 1.5
BATCH = 256


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
    out = np.empty(len(x))
    for i in range(0, len(x), batch_size):
        value = _msssim_ssim(x[i : i + batch_size], y[i : i + batch_size], data_range=1.0, size_average=False,
                             win_size=win, win_sigma=sigma)
        out[i : i + batch_size] = value.numpy()
    return out


def mean_ssim(images: np.ndarray, references: np.ndarray, window: int = WINDOW, sigma: float = SIGMA) -> float:
    """The mean over images of ``ssim``: one number for the whole set."""
    values = ssim(images, references, window, sigma)
    if len(values) == 0:
        raise ValueError("mean_ssim needs at least one image, got 0")
    return float(values.mean())
