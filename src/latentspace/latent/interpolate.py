"""Paths between two images: a pixel cross-fade, and straight (lerp) or great-circle (slerp) paths in latent space.

Under a standard-normal prior almost all mass sits near the sphere of radius sqrt(D), so the midpoint of a
straight line between two codes has an unusually small norm. slerp here follows Shoemake (1985) as used for
latents by White, "Sampling generative networks" (2016), with the norm made explicit:

    u_i = z_i / |z_i|,  omega = angle(u_0, u_1)
    u(t) = sin((1 - t) omega) / sin(omega) * u_0 + sin(t omega) / sin(omega) * u_1      (unit great-circle arc)
    r(t) = (1 - t) |z_0| + t |z_1|                                                    (norm, linear)
    slerp(z_0, z_1, t) = r(t) u(t)

so the angle moves at constant speed, |slerp(t)| = r(t) lies between the endpoint norms, and t = 0, 1 give
z_0, z_1 exactly. When z_0, z_1 are (anti)parallel or one is zero the arc is undefined and slerp is lerp.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from latentspace.data.transforms import to_float, to_uint8
from latentspace.latent.codes import decode_latents, encode_images

PARALLEL_EPS = 1e-6  # sin(omega) below this counts as (anti)parallel


def _weights(t: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """t as a tensor shaped to broadcast against ``like``: scalar -> 0-d, (T,) -> (T, 1, ..., 1)."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.ndim > 1:
        raise ValueError(f"t must be a scalar or a (T,) vector, got shape {tuple(t.shape)}")
    return t if t.ndim == 0 else t.reshape(-1, *([1] * like.ndim))


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Straight line (1 - t) z0 + t z1. z0, z1: same shape S; t scalar -> S, t (T,) -> (T, *S). Exact at t = 0, 1."""
    if z0.shape != z1.shape:
        raise ValueError(f"lerp endpoints must have the same shape, got {tuple(z0.shape)} and {tuple(z1.shape)}")
    w = _weights(t, z0)
    return torch.lerp(z0, z1, w)  # torch.lerp is exact at both ends


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Great-circle path with linearly interpolated norm (see the module docstring). z0, z1: (D,);
    t scalar -> (D,), t (T,) -> (T, D)."""
    if z0.ndim != 1 or z0.shape != z1.shape:
        raise ValueError(f"slerp endpoints must be two (D,) vectors, got {tuple(z0.shape)} and {tuple(z1.shape)}")
    r0, r1 = torch.linalg.vector_norm(z0), torch.linalg.vector_norm(z1)
    if r0 == 0 or r1 == 0:
        return lerp(z0, z1, t)
    u0, u1 = z0 / r0, z1 / r1
    # Kahan's angle formula: accurate for nearly (anti)parallel vectors, unlike acos of the dot product.
    omega = 2 * torch.atan2(torch.linalg.vector_norm(u0 - u1), torch.linalg.vector_norm(u0 + u1))
    sin_omega = torch.sin(omega)
    if sin_omega < PARALLEL_EPS:
        return lerp(z0, z1, t)
    w = _weights(t, z0)
    w0 = torch.sin((1 - w) * omega) / sin_omega
    w1 = torch.sin(w * omega) / sin_omega
    r = torch.lerp(r0, r1, w)
    # Scaling z_i by r / r_i (== 1 exactly at its own end) keeps the endpoints bit-exact.
    return (w0 * (r / r0)) * z0 + (w1 * (r / r1)) * z1


def pixel_path(x0: torch.Tensor, x1: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Cross-fade of two images x0, x1 (C, H, W) float in [0, 1]: t (T,) -> (T, C, H, W)."""
    return lerp(x0, x1, t)


@dataclass(frozen=True)
class InterpolationPaths:
    """Three paths from image a to image b at the same ``t`` (T,) float32 in [0, 1].

    pixel: cross-fade, uint8 (T, C, H, W). lerp / slerp: decoded latent paths, uint8 (T, C, H, W).
    z_lerp / z_slerp: the codes along the latent paths, float32 (T, D).
    """

    t: np.ndarray
    pixel: np.ndarray
    lerp: np.ndarray
    slerp: np.ndarray
    z_lerp: np.ndarray
    z_slerp: np.ndarray


def interpolation_paths(
    model: torch.nn.Module,
    image_a: np.ndarray,
    image_b: np.ndarray,
    steps: int = 10,
    device: torch.device | str | None = None,
) -> InterpolationPaths:
    """Paths between two uint8 (C, H, W) images through pixel space and through the model's latent space
    (posterior means of the endpoints). ``steps`` >= 2 points including both ends."""
    if steps < 2:
        raise ValueError(f"steps must be >= 2 (both endpoints are included), got {steps}")
    if image_a.shape != image_b.shape or image_a.ndim != 3:
        raise ValueError(f"image_a and image_b must both be (C, H, W), got {image_a.shape} and {image_b.shape}")
    t = torch.linspace(0.0, 1.0, steps)
    z = torch.from_numpy(encode_images(model, np.stack([image_a, image_b]), device=device))
    z_lerp, z_slerp = lerp(z[0], z[1], t), slerp(z[0], z[1], t)
    pixel = to_uint8(pixel_path(to_float(image_a), to_float(image_b), t))
    return InterpolationPaths(
        t=t.numpy(),
        pixel=pixel,
        lerp=decode_latents(model, z_lerp, device=device),
        slerp=decode_latents(model, z_slerp, device=device),
        z_lerp=z_lerp.numpy(),
        z_slerp=z_slerp.numpy(),
    )
