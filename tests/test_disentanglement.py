"""MI, normalised MI and MIG on codes with known answers (disentanglement_lib's mig_test, and a few more)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import mutual_info_score

from latentspace.metrics.disentanglement import (
    axis_factor_table, chance_normalized_mi, discretize, factor_entropy, mig, mutual_info, mutual_information_matrix,
    normalized_mi,
)


def _factors(n=10_000, seed=0):
    """Two continuous uniform factors and one discrete factor with 5 values."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(0, 1, n), rng.uniform(-3, 3, n), rng.integers(0, 5, n)], 1)


DISCRETE = [False, False, True]


def test_discretize_bins_each_column_over_its_range():
    x = np.stack([np.linspace(0, 1, 100), np.linspace(-50, 50, 100), np.full(100, 7.0)], 1)
    d = discretize(x, bins=10)
    assert d.dtype == np.int64 and d.min() == 0 and d.max() == 9
    np.testing.assert_array_equal(np.bincount(d[:, 0]), [10] * 10)
    np.testing.assert_array_equal(d[:, 0], d[:, 1])  # only the range matters
    assert len(np.unique(d[:, 2])) == 1


def test_identity_code_has_mig_close_to_one():
    f = _factors()
    assert mig(f, f, DISCRETE) > 0.97
    nmi = normalized_mi(f, f, DISCRETE)
    np.testing.assert_allclose(np.diag(nmi), 1.0, atol=1e-12)


def test_constant_code_has_mig_zero():
    f = _factors(2000)
    codes = np.ones((2000, 4))
    assert mig(codes, f, DISCRETE) == 0.0
    assert mutual_information_matrix(codes, f, DISCRETE).max() == 0.0


def test_noise_code_has_mig_near_zero():
    f = _factors(5000)
    codes = np.random.default_rng(9).standard_normal((5000, 4))
    assert mig(codes, f, DISCRETE) < 0.03
    assert normalized_mi(codes, f, DISCRETE).max() < 0.05


def test_balanced_binary_code_carries_log_2_nats():
    factor = np.tile([0.0, 1.0], 500)[:, None]
    mi = mutual_information_matrix(factor, factor, [True])
    np.testing.assert_allclose(mi, [[np.log(2)]], atol=1e-12)
    np.testing.assert_allclose(factor_entropy(factor, [True]), [np.log(2)], atol=1e-12)


def test_permuted_identity_assigns_each_factor_to_its_axis():
    f = _factors(4000)
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((4000, 2))
    codes = np.concatenate([f[:, [2, 0, 1]], noise], 1)  # axis 0 = factor 2, axis 1 = factor 0, axis 2 = factor 1
    codes[:, 1] = -3 * codes[:, 1] + 0.5  # an affine change of scale or sign does not matter
    table = axis_factor_table(codes, f, ("x", "y", "shape"), DISCRETE)
    assert table.best_axis == (1, 2, 0)
    assert table.holds == ("shape", "x", "y", None, None)
    assert min(table.best_score) > 0.99 and table.mig > 0.95
    assert table.columns == ("axis", "x", "y", "shape", "holds")
    rows = table.rows()
    assert len(rows) == 5 and rows[0][0] == "z0" and rows[0][-1] == "shape" and rows[3][-1] == "-"
    assert rows[1][1] == "1.000"
    assert table.strength == ("holds", "holds", "holds", "chance", "chance")
    assert table.strongest[:3] == ("shape", "x", "y")


def test_shuffled_floor_matches_the_plug_in_bias_of_an_independent_axis():
    """An axis independent of a factor still gets positive plug-in MI; the shuffled floor measures it: the noise
    axis's normalised MI and its floor agree, and both are near (bins - 1)(values - 1) / 2N nats over H."""
    f = _factors(2000)
    noise = np.random.default_rng(5).standard_normal((2000, 1))
    nmi = normalized_mi(noise, f, DISCRETE)
    chance = chance_normalized_mi(noise, f, DISCRETE)
    assert chance.shape == (1, 3) and (chance > 0).all()
    np.testing.assert_allclose(nmi, chance, rtol=0.5)
    bias = 19 * 4 / (2 * 2000) / factor_entropy(f, DISCRETE)[2]  # the 5-valued factor
    assert 0.5 * bias < chance[0, 2] < 2 * bias
    np.testing.assert_array_equal(chance, chance_normalized_mi(noise, f, DISCRETE))  # seeded


def test_a_noisy_copy_is_a_weak_link_and_the_rows_say_so():
    f = _factors(3000)
    rng = np.random.default_rng(6)
    codes = np.stack([f[:, 2] + 2.5 * rng.standard_normal(3000), rng.standard_normal(3000)], 1)
    table = axis_factor_table(codes, f, ("x", "y", "shape"), DISCRETE)
    assert table.strength == ("weak", "chance") and table.strongest[0] == "shape"
    assert table.holds == (None, None)
    assert table.matrix[0, 2] - table.chance[0, 2] > table.weak_excess
    assert table.score(0) == table.matrix[0, 2]
    assert [row[-1] for row in table.rows()] == ["weak: shape", "-"]


def test_a_constant_factor_cannot_be_normalised():
    f = _factors(100)
    f[:, 1] = 2.0
    with pytest.raises(ValueError, match=r"\[1\] are constant"):
        normalized_mi(f, f, DISCRETE)
    with pytest.raises(ValueError, match="3 entries"):
        mutual_information_matrix(f, f, [True])


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 400), st.integers(1, 12), st.integers(1, 12), st.integers(-5, 5), st.booleans(),
       st.integers(0, 2**32 - 1))
def test_mutual_info_equals_sklearns_plug_in_estimate(n, ka, kb, offset, dependent, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, ka, n) + offset  # any integer labels, not only 0..K-1
    b = (a * 3 + rng.integers(0, 2, n)) if dependent else rng.integers(0, kb, n)
    assert mutual_info(a, b) == pytest.approx(mutual_info_score(a, b), abs=1e-12)
