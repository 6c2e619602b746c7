"""Encode / decode throughput of latent.codes against the bare network, timed in the same run.

    python benchmarks/encode_decode.py [--n 10000] [--batch-size 1000] [--repeats 3] [--threads N]

The model is the default MNIST one (``ModelConfig()``: 1x28x28, latent 16); its weights are untrained, which
does not change the arithmetic. ``encode_images`` takes uint8 (N, 1, 28, 28) to float32 codes (N, 16) and
``decode_latents`` takes codes back to uint8 images; both include the uint8 <-> float conversions, eval mode and
inference_mode. The baselines are what one writes by hand: ``model.encoder`` / ``model.decoder`` forward passes
over ready-made float batches in a plain loop under inference_mode, at the same batch size. Every figure is the
best of the repeats: the machine is shared, and the best run is the one least disturbed by other work.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from latentspace.latent.codes import decode_latents, encode_images
from latentspace.models import ModelConfig, build

TARGET_ENCODE_IMAGES_PER_S = 10_000


def best_rate(work: Callable[[], object], count: int, repeats: int) -> tuple[float, list[float]]:
    """Items per second of the fastest of ``repeats`` runs of ``work`` (which handles ``count`` items), and
    every run's rate (for the spread)."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        rates.append(count / (time.perf_counter() - start))
    return max(rates), rates


def plain_encoder(model: torch.nn.Module, x: torch.Tensor, batch_size: int) -> None:
    """The raw encoder forward over float batches, nothing else."""
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            model.encoder(x[i : i + batch_size])


def plain_decoder(model: torch.nn.Module, z: torch.Tensor, batch_size: int) -> None:
    """The raw decoder forward (likelihood parameters) over float code batches, nothing else."""
    with torch.inference_mode():
        for i in range(0, len(z), batch_size):
            model.decoder(z[i : i + batch_size])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000, help="images encoded (and codes decoded) per run")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    config = ModelConfig()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build(config).eval()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.n, *config.image_shape), dtype=np.uint8)
    x = torch.from_numpy(images).float().div_(255.0)
    z_np = rng.standard_normal((args.n, config.latent_dim)).astype(np.float32)
    z = torch.from_numpy(z_np)
    print(f"cpu, torch {torch.__version__}, threads {torch.get_num_threads()}; ModelConfig() defaults "
          f"{config.image_shape}, latent {config.latent_dim}, width {config.width}, hidden {config.hidden}; "
          f"{args.n} images, batch {args.batch_size}, best of {args.repeats}")

    # Warm-up: first calls pay for allocator growth and kernel selection.
    encode_images(model, images[: args.batch_size], batch_size=args.batch_size)
    decode_latents(model, z_np[: args.batch_size], batch_size=args.batch_size)

    rows = [
        ("encode_images", lambda: encode_images(model, images, batch_size=args.batch_size)),
        ("  baseline: model.encoder", lambda: plain_encoder(model, x, args.batch_size)),
        ("decode_latents", lambda: decode_latents(model, z_np, batch_size=args.batch_size)),
        ("  baseline: model.decoder", lambda: plain_decoder(model, z, args.batch_size)),
    ]
    rates = {}
    for name, work in rows:
        rates[name], each = best_rate(work, args.n, args.repeats)
        spread = ", ".join(f"{r:.0f}" for r in each)
        print(f"{name:28s} {rates[name]:10.0f} images/s   (runs: {spread})")
    enc = rates["encode_images"] / rates["  baseline: model.encoder"]
    dec = rates["decode_latents"] / rates["  baseline: model.decoder"]
    print(f"ratio encode_images / raw encoder: {enc:.3f}   decode_latents / raw decoder: {dec:.3f}")
    verdict = "met" if rates["encode_images"] >= TARGET_ENCODE_IMAGES_PER_S else "NOT met"
    print(f"target: encode_images >= {TARGET_ENCODE_IMAGES_PER_S} images/s at batch {args.batch_size}: {verdict} "
          f"({rates['encode_images']:.0f})")


if __name__ == "__main__":
    main()
