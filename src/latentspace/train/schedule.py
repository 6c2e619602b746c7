"""What a training run does at each global step, as plain functions of (step, config): the learning rate,
the KL weight, the order an epoch visits the images in, and which test images are probed after every epoch.

Nothing here holds state: a run resumed at step k recomputes exactly what an uninterrupted run had.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from latentspace.train.config import FINAL_LR_FRACTION, TrainConfig


def lr_at(step: int, total_steps: int, config: TrainConfig) -> float:
    """Learning rate for global ``step`` (0-based): linear warm-up over warmup_steps, then cosine decay from
    lr to lr * FINAL_LR_FRACTION, reached at ``total_steps``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps))
    floor = config.lr * FINAL_LR_FRACTION
    return floor + (config.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def kl_weight_at(step: int, steps_per_epoch: int, config: TrainConfig) -> float:
    """KL weight in [0, 1] for global ``step``: rises linearly over kl_warmup_epochs (1 throughout when 0)."""
    if config.kl_warmup_epochs <= 0:
        return 1.0
    return min(1.0, step / (config.kl_warmup_epochs * steps_per_epoch))


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The visiting order of epoch ``epoch`` (0-based): (n,) int64 on the CPU, the same on every machine.

    Every rank of a distributed run draws the same permutation and takes its own rows of each batch."""
    generator = torch.Generator().manual_seed(seed * 100003 + epoch)
    return torch.randperm(n, generator=generator)


def mirrored(x: torch.Tensor, rows: torch.Tensor, seed: int, step: int) -> torch.Tensor:
    """``x`` (B, C, H, W) with a seeded random half of its rows mirrored left-right. The choice is a function of
    (seed, step, the row's index in the train split), so resumed and distributed runs mirror the same images."""
    coin = torch.Generator().manual_seed(seed * 1_000_003 + step)
    flip = torch.rand(int(rows.max()) + 1 if len(rows) else 0, generator=coin)[rows.cpu()] < 0.5
    flip = flip.to(x.device)[:, None, None, None]
    return torch.where(flip, x.flip(-1), x)


def probe_index(n_test: int, probe_size: int, seed: int) -> np.ndarray:
    """Sorted indices (P,) int64 of the test images whose codes are stored after every epoch."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_test, size=min(probe_size, n_test), replace=False)).astype(np.int64)
