"""Improved precision and recall (Kynkäänniemi et al. 2019) on sets with known coverage."""
from __future__ import annotations

import numpy as np
import pytest

from latentspace.metrics import fidelity
from latentspace.metrics.fidelity import PrecisionRecall, inside_manifold, knn_radii, precision_recall


def _blob(rng, n, centre, f=4, std=1.0):
    return np.asarray(centre, float) + std * rng.standard_normal((n, f))


def test_identical_sets_have_precision_and_recall_one():
    x = _blob(np.random.default_rng(0), 1000, np.zeros(4))
    assert precision_recall(x, x.copy(), k=3) == PrecisionRecall(precision=1.0, recall=1.0, k=3)


def test_two_samples_of_one_distribution_score_high():
    rng = np.random.default_rng(1)
    result = precision_recall(_blob(rng, 2000, np.zeros(4)), _blob(rng, 2000, np.zeros(4)))
    assert result.precision > 0.85 and result.recall > 0.85


def test_far_off_noise_has_low_precision():
    rng = np.random.default_rng(2)
    real = _blob(rng, 1000, np.zeros(4))
    fake = rng.uniform(-50, 50, (1000, 4))
    result = precision_recall(real, fake)
    assert result.precision < 0.2


def test_covering_one_of_two_clusters_keeps_precision_and_loses_recall():
    rng = np.random.default_rng(3)
    real = np.concatenate([_blob(rng, 1000, [-10, 0, 0, 0]), _blob(rng, 1000, [10, 0, 0, 0])])
    fake = _blob(rng, 2000, [-10, 0, 0, 0])
    result = precision_recall(real, fake)
    assert result.precision > 0.85
    assert 0.35 < result.recall < 0.55  # only the left cluster's half of the real points is covered


def test_radii_are_the_kth_neighbour_distance():
    points = np.array([[0.0], [1.0], [3.0], [7.0]])
    np.testing.assert_allclose(knn_radii(points, 1), [1.0, 1.0, 2.0, 4.0])
    np.testing.assert_allclose(knn_radii(points, 2), [3.0, 2.0, 3.0, 6.0])
    inside = inside_manifold(np.array([[-1.0], [1.9], [11.0], [11.5], [20.0]]), points, knn_radii(points, 1))
    np.testing.assert_array_equal(inside, [True, True, True, False, False])


def test_chunking_does_not_change_the_answer(monkeypatch):
    rng = np.random.default_rng(4)
    real, fake = _blob(rng, 300, np.zeros(4)), _blob(rng, 250, np.full(4, 0.7))
    whole = precision_recall(real, fake, k=5)
    monkeypatch.setattr(fidelity, "CHUNK_ELEMENTS", 1000)  # a few rows at a time
    assert precision_recall(real, fake, k=5) == whole
    assert 0.0 < whole.precision < 1.0 and 0.0 < whole.recall < 1.0


def test_bad_inputs_are_named():
    x = np.zeros((10, 3))
    with pytest.raises(ValueError, match="real has 3 features per row, fake has 2"):
        precision_recall(x, np.zeros((10, 2)))
    with pytest.raises(ValueError, match=r"k = 10 needs 1 <= k < both set sizes \(real 10, fake 10\)"):
        precision_recall(x, x, k=10)
