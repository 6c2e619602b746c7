"""kNN and logistic probes on codes: separable clusters are read perfectly, random labels at chance."""
from __future__ import annotations

import numpy as np
import pytest

from latentspace.metrics.probes import ProbeResult, code_probes


def _clusters(n, seed, classes=4, dim=6, spread=0.3):
    rng = np.random.default_rng(seed)
    centres = 5.0 * np.eye(classes, dim)
    y = rng.integers(0, classes, n)
    return centres[y] + spread * rng.standard_normal((n, dim)), y


def test_separable_clusters_are_read_perfectly():
    z_train, y_train = _clusters(1500, 0)
    z_test, y_test = _clusters(500, 1)
    result = code_probes(z_train, y_train, z_test, y_test, target="digit")
    assert isinstance(result, ProbeResult) and result.target == "digit"
    assert result.knn_accuracy > 0.99 and result.logistic_accuracy > 0.99
    assert 0.2 < result.majority_accuracy < 0.35  # four roughly balanced classes
    assert (result.n_train, result.n_test) == (1500, 500)


def test_random_labels_are_read_at_chance():
    rng = np.random.default_rng(2)
    z_train, z_test = rng.standard_normal((3000, 8)), rng.standard_normal((1000, 8))
    y_train, y_test = rng.integers(0, 2, 3000), rng.integers(0, 2, 1000)
    result = code_probes(z_train, y_train, z_test, y_test, target="coin")
    assert abs(result.knn_accuracy - 0.5) < 0.06
    assert abs(result.logistic_accuracy - 0.5) < 0.06


def test_a_linear_boundary_is_read_by_both_probes():
    # the label is the sign of one axis: logistic regression reads it exactly, kNN almost
    rng = np.random.default_rng(3)
    z_train, z_test = rng.standard_normal((2000, 4)), rng.standard_normal((800, 4))
    result = code_probes(z_train, z_train[:, 2] > 0, z_test, z_test[:, 2] > 0, target="sign")
    assert result.logistic_accuracy > 0.98
    assert result.knn_accuracy > 0.85


def test_training_codes_are_subsampled_with_a_seed():
    z_train, y_train = _clusters(3000, 4)
    z_test, y_test = _clusters(300, 5)
    a = code_probes(z_train, y_train, z_test, y_test, "digit", max_train=500, seed=7)
    b = code_probes(z_train, y_train, z_test, y_test, "digit", max_train=500, seed=7)
    assert a == b and a.n_train == 500


def test_bad_inputs_are_named():
    z, y = _clusters(50, 6)
    with pytest.raises(ValueError, match=r"train: expected codes \(N, D\) and labels \(N,\) with one N"):
        code_probes(z, y[:-1], z, y, "digit")
    with pytest.raises(ValueError, match="single class"):
        code_probes(z, np.zeros(50), z, y, "digit")
    with pytest.raises(ValueError, match="k = 50 needs"):
        code_probes(z, y, z, y, "digit", k=50)
