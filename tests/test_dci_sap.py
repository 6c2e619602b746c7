"""MIG, DCI and SAP agree on known answers: an axis-aligned code against the same code mixed by a rotation."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import special_ortho_group

from latentspace.metrics.dci import DCIResult, dci, weighted_one_minus_entropy
from latentspace.metrics.disentanglement import mig
from latentspace.metrics.sap import sap, sap_from_matrix, sap_score_matrix, squared_correlation

MASK = [True, True, False, False]  # two discrete factors (3 and 4 values), two continuous
N_TRAIN, N_TEST = 4000, 1500

# A rotation that puts every factor into every axis with equal weight: the most entangled rotation there is.
HADAMARD = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2.0


def _codes(seed=0, noise=0.01):
    """factors (N, 4) and the axis-aligned code: each standardised factor in its own axis, plus small noise."""
    rng = np.random.default_rng(seed)
    n = N_TRAIN + N_TEST
    f = np.stack([rng.integers(0, 3, n), rng.integers(0, 4, n), rng.uniform(0, 1, n), rng.uniform(-2, 2, n)], 1)
    f = f.astype(np.float64)
    z = (f - f.mean(0)) / f.std(0) + noise * rng.standard_normal(f.shape)
    return f, z


def _split(z, f):
    return z[:N_TRAIN], f[:N_TRAIN], z[N_TRAIN:], f[N_TRAIN:]


def test_mig_is_one_for_the_aligned_code_and_zero_for_the_mixed_one():
    f, z = _codes()
    assert mig(z, f, MASK) > 0.95
    assert mig(z @ HADAMARD, f, MASK) < 0.1


def test_dci_orders_aligned_above_mixed():
    f, z = _codes()
    aligned = dci(*_split(z, f), discrete_factor_mask=MASK)
    mixed = dci(*_split(z @ HADAMARD, f), discrete_factor_mask=MASK)
    assert isinstance(aligned, DCIResult) and aligned.importance.shape == (4, 4)
    np.testing.assert_allclose(aligned.importance.sum(0), 1.0, atol=1e-9)  # one classifier per factor
    np.testing.assert_array_equal(aligned.importance.argmax(0), [0, 1, 2, 3])
    assert aligned.disentanglement > 0.9 and aligned.completeness > 0.9
    assert mixed.disentanglement < 0.2 and mixed.completeness < 0.2
    assert aligned.informativeness > mixed.informativeness + 0.1


def test_dci_also_separates_a_random_rotation():
    f, z = _codes()
    rotation = special_ortho_group.rvs(4, random_state=np.random.default_rng(1))
    aligned = dci(*_split(z, f), discrete_factor_mask=MASK)
    rotated = dci(*_split(z @ rotation, f), discrete_factor_mask=MASK)
    assert aligned.disentanglement > rotated.disentanglement + 0.4
    assert aligned.completeness > rotated.completeness + 0.4


def test_dci_is_seeded():
    f, z = _codes()
    a = dci(*_split(z, f), discrete_factor_mask=MASK, seed=3)
    b = dci(*_split(z, f), discrete_factor_mask=MASK, seed=3)
    np.testing.assert_array_equal(a.importance, b.importance)


def test_entropy_weighting_known_answers():
    # each code serves exactly one factor: D = C = 1
    assert weighted_one_minus_entropy(np.eye(3)) == pytest.approx(1.0)
    # every code serves every factor equally: D = C = 0
    assert weighted_one_minus_entropy(np.ones((3, 3))) == pytest.approx(0.0, abs=1e-9)
    # one code serves two factors equally, another one factor; weights 2/3 and 1/3; base-3 entropy of (1/2, 1/2)
    r = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    expected = (2 / 3) * (1 - np.log(2) / np.log(3)) + (1 / 3) * 1.0
    assert weighted_one_minus_entropy(r) == pytest.approx(expected, abs=1e-6)


def test_sap_orders_aligned_above_mixed():
    f, z = _codes()
    aligned = sap(*_split(z, f), discrete_factor_mask=MASK)
    mixed = sap(*_split(z @ HADAMARD, f), discrete_factor_mask=MASK)
    assert aligned > 0.6
    assert mixed < 0.1
    scores = sap_score_matrix(*_split(z, f), discrete_factor_mask=MASK)
    assert scores.shape == (4, 4)
    np.testing.assert_array_equal(scores.argmax(0), [0, 1, 2, 3])
    assert scores[2, 2] > 0.99 and scores[3, 3] > 0.99  # continuous: R^2 of a copy with tiny noise


def test_sap_known_answers():
    assert sap_from_matrix(np.array([[0.9, 0.2], [0.1, 0.7]])) == pytest.approx(((0.9 - 0.1) + (0.7 - 0.2)) / 2)
    x = np.linspace(-1, 1, 101)
    assert squared_correlation(x, 3 * x + 2) == pytest.approx(1.0)
    assert squared_correlation(x, x**2) == pytest.approx(0.0, abs=1e-12)  # symmetric: no linear trend
    assert squared_correlation(np.zeros(101), x) == 0.0
    with pytest.raises(ValueError, match="at least 2 code axes, got 1"):
        sap_from_matrix(np.ones((1, 3)))


def test_mismatched_splits_are_named():
    f, z = _codes()
    with pytest.raises(ValueError, match="train has 4 code axes and 4 factors, test has 3 and 4"):
        dci(z[:100], f[:100], z[100:200, :3], f[100:200], MASK)
    with pytest.raises(ValueError, match="discrete_factor_mask must have 4 entries"):
        sap(z[:100], f[:100], z[100:200], f[100:200], [True])
