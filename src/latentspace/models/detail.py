"""Detail-keeping loss terms added to the training objective beside the ELBO (never inside it: ``elbo`` and
every likelihood figure stay the plain ELBO's). Neither needs downloaded weights.

- ``ssim``: 1 - SSIM (pytorch-msssim; Gaussian window 11, sigma 1.5, cut to the image for small sides),
  which rewards local contrast and edges that a per-pixel likelihood averages away.
- ``ffl``: the focal frequency loss (Jiang et al. 2021; focal-frequency-loss), a distance between 2-D
  spectra that weights the frequencies the model gets most wrong, usually the high ones that blur loses.

Each term is a mean per pixel value; it is scaled by the number of pixel values so that its weight reads on
the same per-pixel scale as the reconstruction NLL (nats per image).
"""
from __future__ import annotations

from collections.abc import Callable

import torch

SSIM_WINDOW = 11


def ssim_term(mean: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Batch mean of 1 - SSIM between images (B, C, H, W) in [0, 1]."""
    from pytorch_msssim import ssim

    side = min(mean.shape[-2:])
    win = min(SSIM_WINDOW, side if side % 2 else side - 1)  # odd, and no wider than the image
    return 1.0 - ssim(mean, target, data_range=1.0, size_average=True, win_size=win)


def ffl_term(mean: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Focal frequency loss between images (B, C, H, W) in [0, 1] (alpha 1, whole image, per-image spectra)."""
    from focal_frequency_loss import FocalFrequencyLoss

    return FocalFrequencyLoss(loss_weight=1.0, alpha=1.0)(mean, target)


DETAIL_TERMS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "ssim": ssim_term,
    "ffl": ffl_term,
}


def detail_loss(weights: dict[str, float], mean: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each weighted term (0-d, nats-equivalent per image) for the terms whose weight is above 0.

    Always in fp32, outside any autocast: SSIM's local variances (differences of means of squares, against
    constants of 1e-4) are noise in bf16, and a bf16 SSIM term trains the decoder towards garbage."""
    n = target[0].numel()
    with torch.autocast(mean.device.type, enabled=False):
        mean, target = mean.float(), target.float()
        return {name: w * n * DETAIL_TERMS[name](mean, target) for name, w in weights.items() if w > 0}
