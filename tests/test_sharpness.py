"""The high-frequency share of the spectrum on known answers: pure tones either side of the cutoff, white
noise at the analytic area fraction, blur lowering it, identical sets at ratio 1."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from latentspace.metrics.sharpness import high_frequency_mask, hf_ratio, hf_share, hf_shares


def _tone(cycles: int, side: int = 20, channels: int = 1) -> np.ndarray:
    """(1, C, side, side) float: a cosine with ``cycles`` periods across the width, in [0.1, 0.9]."""
    x = np.arange(side)
    row = 0.5 + 0.4 * np.cos(2 * np.pi * cycles * x / side)
    return np.broadcast_to(row, (1, channels, side, side)).copy()


def _blocks(n: int, side: int = 32, seed: int = 0) -> np.ndarray:
    """(n, 3, side, side) uint8: random rectangles on a grey ground, sharp edges."""
    rng = np.random.default_rng(seed)
    out = np.full((n, 3, side, side), 128, np.uint8)
    for img in out:
        for _ in range(6):
            y, x = rng.integers(0, side - 4, 2)
            h, w = rng.integers(3, side // 2, 2)
            img[:, y : y + h, x : x + w] = rng.integers(0, 256, (3, 1, 1))
    return out


def test_a_tone_above_half_nyquist_is_all_high_and_one_below_is_none():
    # 8 cycles over 20 px = 0.4 cycles/px = 0.8 Nyquist; 2 cycles = 0.1 cycles/px = 0.2 Nyquist.
    assert hf_shares(_tone(8))[0] == pytest.approx(1.0, abs=1e-12)
    assert hf_shares(_tone(2))[0] == pytest.approx(0.0, abs=1e-12)
    mixed = (_tone(8) + _tone(2)) / 2  # equal amplitudes: half the power each
    assert hf_shares(mixed)[0] == pytest.approx(0.5, abs=1e-12)


def test_white_noise_scores_the_share_of_frequency_bins_above_the_cutoff():
    noise = np.random.default_rng(0).integers(0, 256, (200, 1, 64, 64), dtype=np.uint8)
    mask = high_frequency_mask(64, 64)
    bins = mask.sum() / (mask.size - 1)  # the DC bin carries nothing after the mean is removed
    assert hf_share(noise) == pytest.approx(bins, abs=0.003)
    assert hf_share(noise) == pytest.approx(1 - math.pi / 16, abs=0.01)  # the continuous area fraction


def test_blur_lowers_the_share_and_the_ratio():
    sharp = _blocks(40)
    blurred = np.stack([gaussian_filter(img.astype(np.float64), sigma=(0, 1.5, 1.5)) for img in sharp])
    blurred = np.clip(np.rint(blurred), 0, 255).astype(np.uint8)
    assert hf_share(blurred) < 0.5 * hf_share(sharp)
    assert hf_ratio(blurred, sharp) < 0.5
    assert hf_ratio(sharp, sharp.copy()) == 1.0


def test_uint8_and_float_agree_and_channel_offsets_do_not_count():
    images = _blocks(5, seed=1)
    np.testing.assert_allclose(hf_shares(images), hf_shares(images / 255.0), rtol=1e-12)
    grey = _tone(8, channels=1) * 0.5 + _tone(3, channels=1) * 0.5
    offset = np.concatenate([grey, grey + 0.05, grey - 0.05], axis=1)  # same pattern, different channel means
    np.testing.assert_allclose(hf_shares(offset), hf_shares(grey), rtol=1e-12)


def test_flat_images_score_zero_and_cannot_be_the_reference():
    flat = np.full((3, 1, 8, 8), 77, np.uint8)
    np.testing.assert_array_equal(hf_shares(flat), 0.0)
    with pytest.raises(ValueError, match="no power above the cutoff"):
        hf_ratio(_blocks(2, side=8), flat)


def test_chunked_shares_equal_one_batch(monkeypatch):
    images = _blocks(9, side=16, seed=2)
    whole = hf_shares(images)
    monkeypatch.setattr("latentspace.metrics.sharpness.CHUNK_VALUES", 3 * 16 * 16 * 2)  # 2 images per chunk
    np.testing.assert_allclose(hf_shares(images), whole, rtol=1e-12)


def test_bad_inputs_are_value_errors():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        hf_shares(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="uint8 or float"):
        hf_shares(np.zeros((1, 1, 8, 8), np.int32))
    with pytest.raises(ValueError, match="cutoff"):
        high_frequency_mask(8, 8, cutoff=1.5)
    with pytest.raises(ValueError, match="at least one image"):
        hf_share(np.zeros((0, 1, 8, 8), np.uint8))
