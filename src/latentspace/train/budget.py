"""Defaults that follow the data: how long to train and in what batches, so that a few hundred photos get as
many optimiser steps as they need instead of ten epochs of four steps each; and epochs that fit a time budget
(``latentspace train --minutes``).

Measured on 400 generated grey faces at 64 px and 500 MNIST digits (issue 13): with ten epochs at batch 128
(40 steps) the model is little better than the mean image; from about 1,500 steps at batch 64 it reconstructs
the held-out test images better than PCA with as many components as the model has latent dimensions.
"""
from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch

from latentspace.data import ImageSet
from latentspace.data.transforms import batch_rows, to_float
from latentspace.models import Autoencoder
from latentspace.train.config import TrainConfig
from latentspace.train.step import evaluate, make_optimizer, train_step
from latentspace.utils.device import channels_last, train_autocast_dtype

MIN_STEPS = 1500     # optimiser steps a default run takes at least, however small the data
SMALL_DATA = 4096    # below this many training images, smaller batches: more, noisier steps per epoch
SMALL_BATCH = 64
LARGE_IMAGE = 3 * 64 * 64  # pixel values per image from which smaller batches pay off too (RGB 64 px)


def default_batch_size(n_train: int, image_shape: tuple[int, int, int] = (1, 28, 28)) -> int:
    """TrainConfig's batch, or SMALL_BATCH for small data or large images. On RGB faces at 64 px (5 epochs, 2
    CPU cores) batch 64 reached test MSE 0.00152 in 90 s where batch 128 reached 0.00245 in 75 s."""
    large = int(np.prod(image_shape)) >= LARGE_IMAGE
    return TrainConfig.batch_size if n_train >= SMALL_DATA and not large else SMALL_BATCH


def default_epochs(n_train: int, batch_size: int) -> int:
    """TrainConfig's epochs, or more when they would give fewer than MIN_STEPS optimiser steps."""
    steps_per_epoch = max(1, math.ceil(n_train / batch_size))
    return max(TrainConfig.epochs, math.ceil(MIN_STEPS / steps_per_epoch))


WARM_STEPS = 5
PROBE_STEPS = 12  # timed optimiser steps of the probe at least, each on its own batch
PROBE_SHARE, PROBE_MAX_SECONDS = 0.025, 3.0  # ... and more, up to this share of the budget (at most this long)
# The share of the budget the epochs are planned for, leaving the rest to the machine's speed, which drifts by a
# few per cent over minutes with nothing else running. A budget is a promise: 85-100% of it is the target.
PLANNED_SHARE = 0.92


def epochs_for_minutes(minutes: float, model: Autoencoder, train: ImageSet, test: ImageSet, config: TrainConfig,
                       device: torch.device) -> int:
    """How many epochs fit in about ``minutes`` of wall time, from a probe of this very setup: a few optimiser
    steps and one evaluation batch timed on throwaway copies of the model (the model is left untouched).

    An epoch costs its steps plus the evaluation of the test split that follows it; the epochs fill
    PLANNED_SHARE of the budget, leaving the rest for the machine's speed to vary. The answer is fixed before
    training starts and written to the run's config, so the run stays exactly resumable and reproducible; the
    minutes are a budget, not a deadline (a busier machine takes longer)."""
    if not math.isfinite(minutes) or minutes <= 0:
        raise ValueError(f"minutes must be a positive number, got {minutes}")
    step = _seconds_per_step(model, train, config, device, min(PROBE_MAX_SECONDS, PROBE_SHARE * minutes * 60.0))
    eval_batch = batch_rows(model.config.image_shape, config.eval_batch_size)
    per_eval = _seconds_per_eval_batch(model, test.images[:eval_batch], device)
    per_epoch = math.ceil(len(train) / config.batch_size) * step + math.ceil(len(test) / eval_batch) * per_eval
    return max(1, int(PLANNED_SHARE * minutes * 60.0 / per_epoch))


def _seconds_per_step(model: Autoencoder, train: ImageSet, config: TrainConfig, device: torch.device,
                      seconds: float = 0.0) -> float:
    """The first quartile of the probe's step times. A fresh process runs its first few dozen steps slower than
    the training that follows (kernels chosen and caches warmed per shape), and the machine's speed wanders by
    10% over seconds: on MNIST at 2 threads, probes of 40 steps had medians of 17.5-22 ms where the epochs that
    followed ran at 16-17.4 ms a step. A probe's slow steps are mostly interference, so its quartile is the
    better estimate of the steady speed. The mean of 12 steps after 3 planned a 2-minute budget into 70% of it."""
    probe = channels_last(copy.deepcopy(model).to(device)).train()
    optimizer = make_optimizer(probe, config.lr, config.weight_decay, device)
    amp = train_autocast_dtype(device, config.precision)
    b, times = config.batch_size, []
    with torch.random.fork_rng(devices=[]):
        start = time.perf_counter()
        for i in range(100_000):
            rows = np.arange(i * b, (i + 1) * b) % len(train)
            batch = to_float(torch.from_numpy(np.ascontiguousarray(train.images[rows])).to(device))
            before = time.perf_counter()
            train_step(probe, optimizer, batch, grad_clip=config.grad_clip, amp_dtype=amp)
            _sync(device)
            if i >= WARM_STEPS:
                times.append(time.perf_counter() - before)
            if len(times) >= PROBE_STEPS and time.perf_counter() - start >= seconds:
                break
    return float(np.quantile(times, 0.25))


def _seconds_per_eval_batch(model: Autoencoder, images: np.ndarray, device: torch.device) -> float:
    probe = channels_last(copy.deepcopy(model).to(device))
    with torch.random.fork_rng(devices=[]):
        evaluate(probe, images, len(images))  # warm
        start = time.perf_counter()
        evaluate(probe, images, len(images))
        _sync(device)
    return time.perf_counter() - start


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
