"""SSIM on known answers: identical images give 1, noise lowers it, and a direct windowed computation of the
formula agrees on tiny images, including ones narrower than the standard 11-px window."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_msssim import ssim as msssim_ssim
from scipy.ndimage import gaussian_filter

from latentspace.metrics.structure import mean_ssim, ssim, window_size


def reference_ssim(x: np.ndarray, y: np.ndarray, win: int, sigma: float = 1.5) -> np.ndarray:
    """The formula written out: a 2-D Gaussian window at every valid position, biased local moments,
    C1 = 0.01^2 and C2 = 0.03^2 (data range 1), mean over positions and channels. x, y: (N, C, H, W) on [0, 1]."""
    c = np.arange(win) - win // 2
    g = np.exp(-(c**2) / (2 * sigma**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    n, ch, h, wd = x.shape
    out = np.zeros(n)
    for i in range(n):
        values = []
        for k in range(ch):
            for r in range(h - win + 1):
                for s in range(wd - win + 1):
                    a, b = x[i, k, r : r + win, s : s + win], y[i, k, r : r + win, s : s + win]
                    ma, mb = (w * a).sum(), (w * b).sum()
                    va, vb = (w * a * a).sum() - ma**2, (w * b * b).sum() - mb**2
                    cov = (w * a * b).sum() - ma * mb
                    values.append((2 * ma * mb + 1e-4) * (2 * cov + 9e-4) / ((ma**2 + mb**2 + 1e-4) * (va + vb + 9e-4)))
        out[i] = np.mean(values)
    return out


def test_identical_images_score_one():
    images = np.random.default_rng(0).integers(0, 256, (6, 3, 16, 16), dtype=np.uint8)
    np.testing.assert_allclose(ssim(images, images.copy()), 1.0, atol=1e-12)
    assert mean_ssim(images, images) == pytest.approx(1.0, abs=1e-12)


def test_heavy_noise_scores_much_lower_than_light_noise():
    rng = np.random.default_rng(1)
    texture = np.stack([gaussian_filter(rng.random((1, 28, 28)), (0, 2, 2)) for _ in range(8)])
    clean = (texture - texture.min()) / np.ptp(texture)  # smooth structure spanning [0, 1]
    light = np.clip(clean + 0.02 * rng.standard_normal(clean.shape), 0, 1)
    heavy = np.clip(clean + 0.5 * rng.standard_normal(clean.shape), 0, 1)
    assert mean_ssim(light, clean) > 0.9
    assert mean_ssim(heavy, clean) < 0.1


@pytest.mark.parametrize("shape, win", [((2, 2, 13, 12), 11), ((2, 1, 7, 9), 7)])
def test_agrees_with_the_formula_written_out(shape, win):
    rng = np.random.default_rng(2)
    x = rng.random(shape)
    y = np.clip(x + 0.2 * rng.standard_normal(shape), 0, 1)
    assert window_size(*shape[2:]) == win
    # pytorch-msssim builds its window in float32 (then casts it): agreement to float32 precision, not float64's.
    np.testing.assert_allclose(ssim(x, y), reference_ssim(x, y, win), rtol=1e-6)


def test_the_window_shrinks_to_the_largest_odd_size_that_fits():
    assert window_size(28, 28) == 11 and window_size(64, 10) == 9 and window_size(5, 6) == 5
    with pytest.raises(ValueError, match="at least 3x3"):
        window_size(2, 5)


def test_batches_agree_with_one_batch_and_uint8_with_float():
    images = np.random.default_rng(3).integers(0, 256, (7, 1, 12, 12), dtype=np.uint8)
    other = np.roll(images, 1, axis=3)
    whole = ssim(images, other)
    np.testing.assert_allclose(ssim(images, other, batch_size=3), whole, rtol=1e-12)
    np.testing.assert_allclose(ssim(images / 255.0, other / 255.0), whole, rtol=1e-12)


def test_bad_inputs_are_value_errors():
    a = np.zeros((2, 1, 8, 8), np.uint8)
    with pytest.raises(ValueError, match="same shape"):
        ssim(a, np.zeros((2, 1, 8, 9), np.uint8))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        ssim(a[0], a[0])
    with pytest.raises(ValueError, match="uint8 or float"):
        ssim(a.astype(np.int16), a.astype(np.int16))


@pytest.mark.parametrize("shape", [(5, 3, 64, 64), (3, 1, 28, 28), (2, 2, 13, 12), (2, 1, 7, 9)])
def test_equals_pytorch_msssim_in_float64(shape):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, shape, dtype=np.uint8)
    y = np.clip(x + rng.normal(0, 25, shape), 0, 255).astype(np.uint8)
    win = window_size(*shape[2:])
    expected = msssim_ssim(torch.from_numpy(x).double() / 255, torch.from_numpy(y).double() / 255, data_range=1.0,
                           size_average=False, win_size=win, win_sigma=1.5).numpy()
    np.testing.assert_allclose(ssim(x, y, batch_size=2), expected, rtol=0, atol=1e-12)
