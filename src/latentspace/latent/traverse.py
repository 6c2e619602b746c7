"""Latent traversals: hold a code fixed, sweep one axis at a time, decode - the standard picture of what
each latent axis does (Higgins et al. 2017, beta-VAE, fig. 1)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from latentspace.latent.codes import decode_latents

DEFAULT_VALUES = tuple(np.linspace(-2.5, 2.5, 9).tolist())  # prior standard deviations


def traversal_latents(
    z0: np.ndarray, axes: Sequence[int] | None = None, values: Sequence[float] = DEFAULT_VALUES, relative: bool = False,
) -> np.ndarray:
    """Codes of a traversal: (A, V, D) float32, row i = z0 with axis axes[i] set to each value.

    z0: (D,). axes: latent axes to sweep (default all). values: in prior std units; set as is
    (``relative=False``) or added to z0's value on that axis (``relative=True``, a sweep around the
    posterior mean).
    """
    z0 = np.asarray(z0, dtype=np.float32)
    if z0.ndim != 1:
        raise ValueError(f"z0 must be one code (D,), got shape {z0.shape}")
    d = z0.shape[0]
    axes = np.arange(d) if axes is None else np.asarray(axes, dtype=np.int64)
    if axes.ndim != 1 or len(axes) == 0 or axes.min() < 0 or axes.max() >= d:
        raise ValueError(f"axes must be indices in 0..{d - 1}, got {axes.tolist()}")
    vals = np.asarray(values, dtype=np.float32)
    if vals.ndim != 1 or len(vals) == 0:
        raise ValueError(f"values must be a non-empty 1-D sequence, got shape {vals.shape}")
    out = np.broadcast_to(z0, (len(axes), len(vals), d)).copy()
    rows = np.arange(len(axes))
    base = z0[axes][:, None] if relative else 0.0
    out[rows, :, axes] = base + vals[None, :]
    return out


def traversal_grid(
    model: torch.nn.Module,
    z0: np.ndarray,
    axes: Sequence[int] | None = None,
    values: Sequence[float] = DEFAULT_VALUES,
    relative: bool = False,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Decoded traversal: uint8 (A, V, C, H, W), one row per axis, one column per value."""
    z = traversal_latents(z0, axes, values, relative)
    a, v, d = z.shape
    images = decode_latents(model, z.reshape(a * v, d), device=device)
    return images.reshape(a, v, *images.shape[1:])
