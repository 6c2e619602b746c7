"""Images <-> latent codes in batches: the one place where a model meets whole arrays of pixels or codes."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from latentspace.data.transforms import batch_rows, to_float, to_uint8
from latentspace.utils.progress import NULL_PROGRESS, Progress


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` in eval mode under inference_mode, then put every submodule's training flag back as it was."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.inference_mode():
            yield model
    finally:
        for m, training in modes:
            m.training = training


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (cpu for a model with neither)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def check_images(model: nn.Module, images: np.ndarray) -> None:
    """Raise ValueError unless ``images`` is uint8 (N, C, H, W) with (C, H, W) = model.config.image_shape."""
    expected = tuple(int(s) for s in model.config.image_shape)
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        got = f"{images.dtype} {tuple(images.shape)}" if hasattr(images, "shape") else type(images).__name__
        raise ValueError(f"images must be a uint8 numpy array (N, C, H, W), got {got}")
    if tuple(images.shape[1:]) != expected:
        raise ValueError(f"images have shape (C, H, W) = {tuple(images.shape[1:])}, model expects {expected}")


def check_latents(model: nn.Module, z: np.ndarray | torch.Tensor) -> None:
    """Raise ValueError unless ``z`` is (N, D) with D = model.config.latent_dim."""
    d = int(model.config.latent_dim)
    if z.ndim != 2:
        raise ValueError(f"latents must be (N, {d}), got shape {tuple(z.shape)}; a single code needs z[None]")
    if z.shape[1] != d:
        raise ValueError(f"latent has {z.shape[1]} values, model expects {d}")
    finite = torch.isfinite(z) if isinstance(z, torch.Tensor) else np.isfinite(np.asarray(z, dtype=np.float64))
    if not bool(finite.all()):
        raise ValueError("latents hold NaN or inf values: a code must be finite numbers")


def encode_images(
    model: nn.Module,
    images: np.ndarray,
    batch_size: int | None = None,
    sample: bool = False,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    progress: Progress = NULL_PROGRESS,
) -> np.ndarray:
    """Codes of ``images``: uint8 (N, C, H, W) -> float32 (N, D).

    ``batch_size`` None: ``batch_rows`` of the model's image shape. Posterior means by default; ``sample=True``
    draws one posterior sample per image with ``generator`` (which must live on ``device``). ``device`` defaults
    to the model's device; the model must already be there.
    """
    check_images(model, images)
    batch_size = batch_rows(model.config.image_shape) if batch_size is None else batch_size
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = torch.device(device) if device is not None else model_device(model)
    n = images.shape[0]
    out = np.empty((n, int(model.config.latent_dim)), dtype=np.float32)
    progress.start(n, "encode")
    try:
        with evaluating(model):
            for i in range(0, n, batch_size):
                x = to_float(images[i : i + batch_size]).to(device, non_blocking=True)
                posterior = model.encode(x)
                z = posterior.sample(generator) if sample else posterior.mean
                out[i : i + len(x)] = z.float().cpu().numpy()
                progress.advance(len(x))
    finally:
        progress.close()
    return out


def decode_latents(
    model: nn.Module,
    z: np.ndarray | torch.Tensor,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    progress: Progress = NULL_PROGRESS,
) -> np.ndarray:
    """Images of codes ``z`` (N, D) -> uint8 (N, C, H, W) (the decoder's mean, rounded)."""
    check_latents(model, z)
    batch_size = batch_rows(model.config.image_shape) if batch_size is None else batch_size
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = torch.device(device) if device is not None else model_device(model)
    zt = torch.as_tensor(z, dtype=torch.float32)
    n = zt.shape[0]
    out = np.empty((n, *(int(s) for s in model.config.image_shape)), dtype=np.uint8)
    progress.start(n, "decode")
    try:
        with evaluating(model):
            for i in range(0, n, batch_size):
                batch = zt[i : i + batch_size].to(device, non_blocking=True)
                out[i : i + len(batch)] = to_uint8(model.decode(batch))
                progress.advance(len(batch))
    finally:
        progress.close()
    return out
