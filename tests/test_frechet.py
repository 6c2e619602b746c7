"""Fréchet distance between Gaussians fitted to feature sets: known answers."""
from __future__ import annotations

import numpy as np
import pytest

from latentspace.metrics.frechet import frechet_distance, frechet_distance_from_stats


def _features(n=4000, f=8, seed=0, scale=3.0):
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((f, f))  # correlated features, not a diagonal covariance
    return scale * rng.standard_normal((n, f)) @ mix + rng.uniform(-5, 5, f)


def test_a_set_against_itself_is_zero():
    a = _features()
    scale = np.var(a, axis=0).sum()
    d = frechet_distance(a, a)
    assert d >= 0.0
    assert d < 1e-6 * scale


def test_distance_grows_with_added_noise():
    a = _features(seed=1)
    rng = np.random.default_rng(2)
    noise = rng.standard_normal(a.shape)
    d = [frechet_distance(a, a + s * noise) for s in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert (np.diff(d) > 0).all(), d
    assert d[-1] > 10.0


def test_diagonal_gaussians_match_the_closed_form():
    rng = np.random.default_rng(3)
    n = 200_000
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.5, 1.0, 0.0])
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([0.5, 3.0, 0.5])
    a = mu1 + s1 * rng.standard_normal((n, 3))
    b = mu2 + s2 * rng.standard_normal((n, 3))
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)  # 6.25 + 0.25 + 1.0 = 7.5
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.02)


def test_from_stats_is_exact_for_given_statistics():
    mu1, mu2 = np.array([0.0, 0.0]), np.array([3.0, 4.0])
    c1, c2 = np.diag([4.0, 9.0]), np.diag([1.0, 1.0])
    # 25 + (2 - 1)^2 + (3 - 1)^2
    assert frechet_distance_from_stats(mu1, c1, mu2, c2) == pytest.approx(30.0, abs=1e-9)
    # symmetric
    assert frechet_distance_from_stats(mu2, c2, mu1, c1) == pytest.approx(30.0, abs=1e-9)


def test_singular_covariances_give_a_finite_correct_distance():
    rng = np.random.default_rng(4)
    a = np.zeros((500, 4))
    a[:, 0] = rng.standard_normal(500)  # rank 1 covariance
    b = a.copy()
    b[:, 0] += 2.0
    d = frechet_distance(a, b)
    assert np.isfinite(d) and d == pytest.approx(4.0, abs=1e-3)


def test_feature_counts_must_match():
    with pytest.raises(ValueError, match="8 features per row, features_b has 3"):
        frechet_distance(_features(100), np.zeros((100, 3)))
    with pytest.raises(ValueError, match=r"features_a must be \(N, F\)"):
        frechet_distance(np.zeros(10), np.zeros((10, 1)))
