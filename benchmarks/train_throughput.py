"""Trainer overhead: latentspace's fit() against a plain PyTorch loop on the same network and data.

The plain loop is what one writes by hand: a DataLoader over a TensorDataset of float images, AdamW at a
fixed learning rate, the same gradient clipping, no evaluation, no logging, no checkpoints. fit() adds the
schedules, progress reports, per-epoch evaluation on the test split, probe snapshots and checkpoints.

Prints images/s of both and the ratio ours/plain (target >= 0.95) for the training phase, for the whole of
fit() without its evaluation, and for the whole of fit(); plus where fit()'s time goes.

    python benchmarks/train_throughput.py --n 10000 --epochs 3 [--device auto] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from latentspace.data import load, to_float
from latentspace.models import ModelConfig, build
from latentspace.train import TrainConfig, fit
from latentspace.utils.device import autocast_dtype, pick_device


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fresh_model(config: ModelConfig, device: torch.device):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build(config).to(device).train()


def plain_loop(config: ModelConfig, images_uint8, cfg: TrainConfig, device: torch.device) -> float:
    """Seconds for cfg.epochs epochs of a hand-written loop."""
    model = fresh_model(config, device)
    fused = True if device.type == "cuda" else None
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
    loader = DataLoader(TensorDataset(to_float(images_uint8)), batch_size=cfg.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(0), pin_memory=device.type == "cuda")
    noise = torch.Generator(device=device).manual_seed(0)
    amp = autocast_dtype(device)
    n = len(images_uint8)
    sync(device)
    start = time.perf_counter()
    for _ in range(cfg.epochs):
        for (x,) in loader:
            x = x.to(device, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                loss = model.loss(x, generator=noise, dataset_size=n).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
    sync(device)
    return time.perf_counter() - start


class Counter:
    """A Progress that only counts, to see how often fit() reports."""

    def __init__(self) -> None:
        self.calls = 0

    def start(self, total: int, description: str) -> None:
        pass

    def advance(self, n: int = 1, **info) -> None:
        self.calls += 1

    def close(self) -> None:
        pass


def ours(config: ModelConfig, train, test, cfg: TrainConfig, device: torch.device) -> dict[str, float]:
    """fit() in a temporary run folder: wall time and its breakdown from metrics.jsonl."""
    model = fresh_model(config, device)
    counter = Counter()
    with tempfile.TemporaryDirectory() as run_dir:
        sync(device)
        start = time.perf_counter()
        result = fit(model, train, test, cfg, Path(run_dir), device, progress=counter)
        wall = time.perf_counter() - start
    train_s = sum(r["seconds"] for r in result.history)
    eval_s = sum(r["eval_seconds"] for r in result.history)
    return {"wall": wall, "train": train_s, "eval": eval_s, "other": wall - train_s - eval_s,
            "progress_calls": counter.calls}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000, help="train images (MNIST)")
    p.add_argument("--test-n", type=int, default=10_000, help="test images evaluated after every epoch")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3, help="alternating runs of each; medians are reported")
    p.add_argument("--latent-dim", type=int, default=16)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--compile", action="store_true")
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    train = load("mnist", split="train", data_dir=args.data_dir, n=args.n)
    test = load("mnist", split="test", data_dir=args.data_dir, n=args.test_n)
    config = ModelConfig(image_shape=train.shape, latent_dim=args.latent_dim)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, compile=args.compile)
    n_images = args.epochs * len(train)
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}; {len(train)} train / {len(test)} test "
          f"images, {args.epochs} epochs, batch {args.batch_size}, latent {args.latent_dim}")

    # Warm-up: first calls pay for allocator growth, kernel selection and lazy initialisation.
    plain_loop(config, train.images[: 4 * args.batch_size], cfg.with_changes(epochs=1), device)
    ours(config, train.subset(slice(0, 4 * args.batch_size)), test.subset(slice(0, 100)), cfg.with_changes(epochs=1),
         device)

    plain_s, runs = [], []
    for _ in range(args.repeats):
        plain_s.append(plain_loop(config, train.images, cfg, device))
        runs.append(ours(config, train, test, cfg, device))
    plain = statistics.median(plain_s)
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}

    rate = lambda seconds: n_images / seconds  # noqa: E731
    each = ", ".join(f"{s:.2f}" for s in plain_s)
    print(f"plain loop          {rate(plain):10.0f} img/s   ({plain:.2f} s; runs {each})")
    print(f"fit, training phase {rate(med['train']):10.0f} img/s   ratio {plain / med['train']:.3f}")
    no_eval = med["wall"] - med["eval"]
    print(f"fit, without eval   {rate(no_eval):10.0f} img/s   ratio {plain / no_eval:.3f}")
    print(f"fit, all            {rate(med['wall']):10.0f} img/s   ratio {plain / med['wall']:.3f}")
    print(f"fit breakdown (median s): train {med['train']:.2f}, eval {med['eval']:.2f} "
          f"({args.epochs} x {len(test)} images), snapshots+checkpoints+setup {med['other']:.2f}; "
          f"progress reports {med['progress_calls']:.0f} for {args.epochs * -(-len(train) // args.batch_size)} steps")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
