"""Small trained models shared by the metrics tests, built once per session (each function caches its result).

Callers must not modify what they get back.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from latentspace.data import ImageSet, idx
from latentspace.data.transforms import to_float
from latentspace.metrics.evaluator import Evaluator, train_evaluator
from latentspace.models import Autoencoder, ModelConfig, build

VAE_STEPS = 200
VAE_TRAIN_IMAGES = 5000


@lru_cache(maxsize=None)
def mnist_split(mnist_dir: Path, split: str) -> ImageSet:
    return idx.load_idx("mnist", split=split, data_dir=mnist_dir)


@lru_cache(maxsize=None)
def tiny_mnist_vae(mnist_dir: Path) -> Autoencoder:
    """A latent-8 VAE trained for 200 AdamW steps (lr 2e-3, batches of 128) on the first 5,000 MNIST train images."""
    x = to_float(mnist_split(mnist_dir, "train").images[:VAE_TRAIN_IMAGES])
    g = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build(ModelConfig(latent_dim=8, width=8, hidden=64))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    for _ in range(VAE_STEPS):
        batch = x[torch.randint(0, len(x), (128,), generator=g)]
        optimizer.zero_grad(set_to_none=True)
        model.loss(batch, generator=g).loss.backward()
        optimizer.step()
    return model.eval()


@lru_cache(maxsize=None)
def mnist_evaluator(mnist_dir: Path) -> Evaluator:
    """An evaluator with the default config (600 steps: 4 epochs) on the first 10,000 MNIST train images, tested on
    the first 2,000 test images."""
    train = mnist_split(mnist_dir, "train").subset(slice(0, 10_000))
    test = mnist_split(mnist_dir, "test").subset(slice(0, 2_000))
    return train_evaluator(train, test)
