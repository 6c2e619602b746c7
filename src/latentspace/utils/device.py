"""Choose the compute device once, at the entry point."""
from __future__ import annotations

import functools
from pathlib import Path

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


PRECISIONS = ("auto", "fp32", "bf16")
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # the instructions that make bf16 matmuls faster than fp32


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Evaluation: bf16 autocast on GPUs, full precision on CPU (figures stay comparable across CPUs)."""
    return torch.bfloat16 if device.type == "cuda" else None


def train_autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """Training: 'auto' is bf16 autocast where the device runs bf16 natively (GPUs; CPUs with AVX512-BF16 or
    AMX, where it takes the default MNIST model's step from about 18 to 15 ms on 2 cores) and fp32 elsewhere (on
    other CPUs bf16 is emulated and slower). The weights and the optimiser stay fp32 either way."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return None
    if precision == "bf16" or device.type == "cuda":
        return torch.bfloat16
    return torch.bfloat16 if device.type == "cpu" and cpu_has_native_bf16() else None


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 dot-product instructions (read from /proc/cpuinfo; False where it is absent)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace").split()
    except OSError:
        return False
    return any(flag in flags for flag in CPU_BF16_FLAGS)


def channels_last(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` (changed in place) with its 4-D weights in the channels-last layout on CPU and CUDA, whose
    convolutions then run NHWC. On 2 cores the 64 px faces decoder went from 1,240 to 2,450 images/s with
    identical uint8 images, the encoder from 2,260 to 3,540, and a bf16 training step 6% faster. fit() trains
    in it throughout (a resumed run keeps the layout of its uninterrupted twin) and hands the model back in the
    usual layout, the one a built or reloaded model has, so both compute exactly the same; the api opens models
    for inference in it."""
    params = list(module.parameters())
    if params and params[0].device.type in ("cpu", "cuda"):
        module.to(memory_format=torch.channels_last)
    return module
