"""Defaults that follow the data: how long to train and in what batches, so that a few hundred photos get as
many optimiser steps as they need instead of ten epochs of four steps each.

Measured on 400 generated grey faces at 64 px and 500 MNIST digits (issue 13): with ten epochs at batch 128
(40 steps) the model is little better than the mean image; from about 1,500 steps at batch 64 it reconstructs
the held-out test images better than PCA with as many components as the model has latent dimensions.
"""
from __future__ import annotations

import math

from latentspace.train.config import TrainConfig

MIN_STEPS = 1500     # optimiser steps a default run takes at least, however small the data
SMALL_DATA = 4096    # below this many training images, smaller batches: more, noisier steps per epoch
SMALL_BATCH = 64


def default_batch_size(n_train: int) -> int:
    return TrainConfig.batch_size if n_train >= SMALL_DATA else SMALL_BATCH


def default_epochs(n_train: int, batch_size: int) -> int:
    """TrainConfig's epochs, or more when they would give fewer than MIN_STEPS optimiser steps."""
    steps_per_epoch = max(1, math.ceil(n_train / batch_size))
    return max(TrainConfig.epochs, math.ceil(MIN_STEPS / steps_per_epoch))
