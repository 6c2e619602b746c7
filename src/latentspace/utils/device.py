"""Choose the compute device once, at the entry point."""
from __future__ import annotations

import torch

CHOICES = ("auto", "cpu", "cuda", "mps")


def pick_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda if available, else mps, else cpu. An explicit unavailable device is an error."""
    if name not in CHOICES and not name.startswith("cuda:"):
        raise ValueError(f"device must be one of {', '.join(CHOICES)} (or cuda:N), got {name!r}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available on this machine; use --device auto")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' asked for, but MPS is not available on this machine; use --device auto")
    return torch.device(name)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 autocast on GPUs, full precision on CPU (bf16 matmuls on CPUs without AMX are slower)."""
    return torch.bfloat16 if device.type == "cuda" else None
