"""Pixel <-> tensor conversion: the one place where uint8 becomes float in [0, 1] and back."""
from __future__ import annotations

import numpy as np
import torch


def to_float(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float32 in [0, 1] (a tensor; numpy input is wrapped without copy)."""
    t = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if t.dtype != torch.uint8:
        raise TypeError(f"to_float expects uint8 pixels, got {t.dtype}")
    return t.to(torch.float32).div_(255.0)


def to_uint8(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """float in [0, 1] (B, C, H, W) -> uint8 numpy, rounded and clipped."""
    a = x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)
    return np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)


def to_hwc(images: np.ndarray) -> np.ndarray:
    """(B, C, H, W) -> (B, H, W, C) for PIL / matplotlib."""
    return np.ascontiguousarray(images.transpose(0, 2, 3, 1))
