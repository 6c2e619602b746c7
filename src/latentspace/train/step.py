"""One optimiser step and one evaluation pass: the two things the loop does to a model.

``train_step`` takes anything with the model's ``loss`` and ``parameters``: an Autoencoder, or the same
wrapped for several processes by ``train.distributed.DataParallelLoss``, whose backward pass also averages
the gradients across the ranks.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from latentspace.data.transforms import to_float
from latentspace.models import Autoencoder, LossOutput
from latentspace.models.adversary import GAN_BETAS
from latentspace.utils.device import autocast_dtype


@dataclass(frozen=True)
class StepOutput:
    """What one step did. losses: the batch's loss terms (0-d, still on the device). grad_norm: the global L2
    norm of the gradient before clipping (0-d, on the device; under DDP that of the averaged gradient, the
    same on every rank)."""

    losses: LossOutput
    grad_norm: torch.Tensor


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, device: torch.device):
    """AdamW as every trainer here builds it: fused (one kernel per step) on CPUs and GPUs, where torch's CPU
    default is a Python loop over the tensors that cost 1.5 ms of a 20 ms step."""
    fused = True if device.type in ("cuda", "cpu") else None
    adversary = getattr(model, "adversary", None)
    if adversary is None:
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, fused=fused)
    # The PatchGAN discriminator trains as GANs do (models.adversary), in a group of its own.
    own = {id(p) for p in adversary.parameters()}
    groups = [{"params": [p for p in model.parameters() if id(p) not in own]},
              {"params": list(adversary.parameters()), "betas": GAN_BETAS, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, fused=fused)


def train_step(
    model,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    kl_weight: float = 1.0,
    dataset_size: int | None = None,
    grad_clip: float = 0.0,
    amp_dtype: torch.dtype | None = None,
    loss_scale: float = 1.0,
) -> StepOutput:
    """One optimiser step on x (B, C, H, W) float in [0, 1].

    model: an Autoencoder or a DataParallelLoss. loss_scale multiplies the loss before backward only (the
    returned losses are unscaled): a rank holding part of a global batch scales its mean so that the
    average DDP takes over the ranks is the gradient of the global batch's mean.
    """
    optimizer.zero_grad(set_to_none=True)
    with _autocast(x.device, amp_dtype):
        out = model.loss(x, generator=generator, kl_weight=kl_weight, dataset_size=dataset_size)
    total = out.loss if out.aux is None else out.loss + out.aux  # an adversary's loss: its own gradient only
    (total * loss_scale if loss_scale != 1.0 else total).backward()
    params = [p for p in model.parameters() if p.grad is not None]
    if grad_clip > 0:
        norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
    else:  # the same norm clip_grad_norm_ computes, for the loop's divergence check
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
    optimizer.step()
    return StepOutput(out, norm.detach())


@dataclass(frozen=True)
class EvalResult:
    """Means over the evaluated images, nats per image (elbo: higher is better)."""

    loss: float
    recon_nll: float
    kl: float
    elbo: float
    terms: dict[str, float] = field(default_factory=dict)
    n: int = 0
    seconds: float = 0.0


def evaluate(
    model: Autoencoder,
    images_uint8: torch.Tensor | np.ndarray,
    batch_size: int,
    generator: torch.Generator | None = None,
    dataset_size: int | None = None,
) -> EvalResult:
    """Loss terms of ``images_uint8`` (N, C, H, W) at KL weight 1, in eval mode under inference_mode.

    generator: the posterior-sample noise (on the model's device). The model's training flag is restored.
    """
    images = torch.from_numpy(images_uint8) if isinstance(images_uint8, np.ndarray) else images_uint8
    n = int(images.shape[0])
    if n == 0:
        raise ValueError("evaluate needs at least one image, got 0")
    device = device_of(model)
    amp = autocast_dtype(device)
    start = time.perf_counter()
    names: list[str] | None = None
    rows, sizes = [], []
    with eval_mode(model), _autocast(device, amp):
        for i in range(0, n, batch_size):
            x = to_float(images[i : i + batch_size].to(device, non_blocking=True))
            out = model.loss(x, generator=generator, kl_weight=1.0, dataset_size=dataset_size or n)
            names = sorted(out.terms) if names is None else names
            values = [out.loss, out.recon_nll, out.kl, out.elbo, *(out.terms[k] for k in names)]
            rows.append(torch.stack([v.float() for v in values]))
            sizes.append(x.shape[0])
    # Read back once, sum in float64: batch means weighted by batch size.
    per_batch = torch.stack(rows).cpu().double()
    means = ((per_batch * torch.tensor(sizes, dtype=torch.float64)[:, None]).sum(0) / n).tolist()
    return EvalResult(
        loss=means[0], recon_nll=means[1], kl=means[2], elbo=means[3],
        terms=dict(zip(names, means[4:])), n=n, seconds=time.perf_counter() - start,
    )


def posterior_means(model: Autoencoder, images_uint8: torch.Tensor, batch_size: int) -> np.ndarray:
    """Posterior means (N, D) float32 of images_uint8 (N, C, H, W) on the model's device."""
    device = device_of(model)
    chunks = []
    with eval_mode(model), _autocast(device, autocast_dtype(device)):
        for i in range(0, int(images_uint8.shape[0]), batch_size):
            x = to_float(images_uint8[i : i + batch_size].to(device, non_blocking=True))
            chunks.append(model.encode(x).mean.float())
    if not chunks:
        return np.zeros((0, int(model.config.latent_dim)), dtype=np.float32)
    return torch.cat(chunks).cpu().numpy()


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        for m, training in modes:
            m.training = training


def device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
