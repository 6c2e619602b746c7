"""Training against the machine's limit: achieved FLOP/s of a training step per model family and image size,
beside the peak matrix-multiply rate measured in the same run (fp32 sgemm, and bf16 where the CPU runs it
natively), and the target of issue 22 (the default family at 28, 32 and 64 px reaches 35% of peak).

    python benchmarks/train_flops.py [--threads 2] [--steps 20] [--archs plain,resnet] [--sizes 28,32,64]

Each case is the default model for its shape (``ModelConfig(image_shape, arch=...)``: the family's default
width; objective vae), the default batch for 20,000 training images (train.budget.default_batch_size), and
train.step.train_step exactly as fit() calls it: channels-last weights, the autocast dtype training uses
(train_autocast_dtype), fused AdamW. A step's FLOPs (forward and backward) are counted once by
torch.utils.flop_counter.FlopCounterMode, which counts matrix products and convolutions, the work a peak
is measured on; elementwise work (normalisation, activations, the loss) is left out of both. The peak is the
best of 5 rounds of 2048 x 2048 matrix products in the dtype. Inputs are random pixels: throughput does not
depend on what the images show. Run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from latentspace.data.transforms import to_float
from latentspace.models import ModelConfig, build
from latentspace.train.budget import default_batch_size
from latentspace.train.step import make_optimizer, train_step
from latentspace.utils.device import channels_last, train_autocast_dtype

TARGET = 0.35
SHAPES = {28: (1, 28, 28), 32: (3, 32, 32), 64: (3, 64, 64)}
DEFAULT_ARCH = "the family ModelConfig picks by itself for the shape"


def peak_flops(dtype: torch.dtype, n: int = 2048, rounds: int = 5) -> float:
    """FLOP/s of the best round of n x n matrix products in ``dtype`` (about half a second each)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    best = 0.0
    for _ in range(rounds):
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < 0.5:
            torch.mm(a, b)
            reps += 1
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - start))
    return best


def step_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Matrix-product and convolution FLOPs of one forward and backward pass of the training loss."""
    with FlopCounterMode(display=False) as counter:
        model.loss(x, generator=torch.Generator().manual_seed(0)).loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def measure(shape: tuple[int, int, int], arch: str | None, steps: int) -> dict:
    """Images/s and FLOP/s of ``steps`` training steps of the default model for ``shape`` and ``arch``."""
    torch.manual_seed(0)
    config = ModelConfig(image_shape=shape, latent_dim=16, arch=arch)
    model = channels_last(build(config)).train()
    batch = default_batch_size(20_000, shape)
    pixels = np.random.default_rng(0).integers(0, 256, (batch * (steps + 3), *shape), dtype=np.uint8)
    flops = step_flops(model, to_float(pixels[:batch]))
    device = torch.device("cpu")
    optimizer = make_optimizer(model, 1e-4, 0.0, device)
    amp = train_autocast_dtype(device)
    generator = torch.Generator().manual_seed(0)
    for i in range(steps + 3):
        if i == 3:  # the first steps allocate and pick kernels
            start = time.perf_counter()
        train_step(model, optimizer, to_float(pixels[i * batch : (i + 1) * batch]), generator, amp_dtype=amp)
    seconds = (time.perf_counter() - start) / steps
    return {"arch": model.config.arch, "width": model.config.width, "batch": batch, "amp": amp,
            "gflop_step": flops / 1e9, "images_s": batch / seconds, "flops": flops / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--archs", default="default,plain,resnet", help="'default' is " + DEFAULT_ARCH)
    parser.add_argument("--sizes", default="28,32,64")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peaks = {"fp32": peak_flops(torch.float32)}
    if train_autocast_dtype(torch.device("cpu")) == torch.bfloat16:
        peaks["bf16"] = peak_flops(torch.bfloat16)
    print(f"torch {torch.__version__}, {args.threads} threads; peak "
          + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peaks.items()) + " (2048x2048 matrix products)")
    print(f"{'size':>4} {'family':>8} {'width':>5} {'batch':>5} {'GFLOP/step':>10} {'images/s':>9} "
          f"{'GFLOP/s':>8} " + " ".join(f"{'of ' + k:>7}" for k in peaks) + "  target")
    for size in (int(s) for s in args.sizes.split(",")):
        for arch in args.archs.split(","):
            r = measure(SHAPES[size], None if arch == "default" else arch, args.steps)
            peak = peaks["bf16" if r["amp"] == torch.bfloat16 else "fp32"]
            verdict = f"{TARGET:.0%} of the {'bf16' if r['amp'] else 'fp32'} peak: " + (
                "met" if r["flops"] >= TARGET * peak else "missed") if arch == "default" else ""
            label = f"{r['arch']}*" if arch == "default" else r["arch"]
            print(f"{size:>4} {label:>8} {r['width']:>5} {r['batch']:>5} {r['gflop_step']:>10.2f} "
                  f"{r['images_s']:>9.0f} {r['flops'] / 1e9:>8.1f} "
                  + " ".join(f"{r['flops'] / p:>7.1%}" for p in peaks.values()) + f"  {verdict}", flush=True)
    print("* the default family for that size; ratios: achieved matrix-product FLOP/s over each peak")


if __name__ == "__main__":
    main()
