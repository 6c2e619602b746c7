"""Attribute directions on synthetic Gaussian codes with planted directions (known answers)."""
from __future__ import annotations

import numpy as np
import pytest

from latentspace.data.imageset import ImageSet
from latentspace.latent.directions import (
    AttributeDirection, best_threshold, conditional_direction, directions_for, edit_latents, fit_direction,
    load_directions, save_directions,
)

D = 8


def _unit(v):
    return v / np.linalg.norm(v)


def _planted(n=3000, seed=0, noise=0.3):
    """Codes z ~ N(0, I) and two attributes along unit w1, w2 with cos(w1, w2) = 0.6."""
    rng = np.random.default_rng(seed)
    w1 = _unit(rng.standard_normal(D))
    ortho = rng.standard_normal(D)
    ortho = _unit(ortho - (ortho @ w1) * w1)
    w2 = 0.6 * w1 + 0.8 * ortho
    z = rng.standard_normal((n, D))
    y1 = (z @ w1 + noise * rng.standard_normal(n) > 0).astype(int)
    y2 = (z @ w2 + noise * rng.standard_normal(n) > 0.5).astype(int)
    return z, y1, y2, w1, w2


@pytest.mark.parametrize("method", ["mean", "logistic"])
def test_planted_direction_is_recovered(method):
    z, y1, _, w1, _ = _planted()
    d = fit_direction(z[:2000], y1[:2000], z[2000:], y1[2000:], method=method, name="smile")
    assert (d.name, d.method) == ("smile", method)
    assert np.linalg.norm(d.vector) == pytest.approx(1.0, abs=1e-12)
    assert d.vector @ w1 > 0.95
    assert d.probe_accuracy > 0.85  # noise 0.3 on a unit-std projection caps it near 0.9
    assert d.scale == pytest.approx(np.std(z[:2000] @ d.vector))


def test_best_threshold_known_answers():
    assert best_threshold(np.array([0.0, 1.0, 2.0, 3.0]), np.array([0, 0, 1, 1])) == 1.5
    assert best_threshold(np.array([3.0, 0.0, 2.0, 1.0]), np.array([1, 0, 1, 1])) == 0.5
    assert best_threshold(np.array([0.0, 1.0]), np.array([1, 1])) < 0.0


def test_conditional_direction_is_orthogonal_to_the_others_and_keeps_its_attribute():
    z, y1, y2, w1, w2 = _planted(seed=1)
    tr, te = slice(0, 2000), slice(2000, None)
    d1 = fit_direction(z[tr], y1[tr], z[te], y1[te], name="a")
    d2 = fit_direction(z[tr], y2[tr], z[te], y2[te], name="b")
    c = conditional_direction(d1, [d2], z[tr], y1[tr], z[te], y1[te])
    assert abs(c.vector @ d2.vector) < 1e-6
    assert np.linalg.norm(c.vector) == pytest.approx(1.0, abs=1e-12)
    assert c.vector @ _unit(w1 - (w1 @ w2) * w2) > 0.95  # the part of w1 that w2 does not explain
    assert c.vector @ w1 > 0.7 and c.probe_accuracy > 0.7
    assert (c.method, c.conditioned_on) == ("conditional", ("b",))


def test_conditional_on_several_directions():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((1500, D))
    y = (z[:, 0] + z[:, 1] + z[:, 2] > 0).astype(int)
    dirs = [fit_direction(z, (z[:, k] > 0).astype(int), z, (z[:, k] > 0).astype(int), name=f"f{k}") for k in (1, 2)]
    primary = fit_direction(z, y, z, y, name="sum")
    c = conditional_direction(primary, dirs, z, y, z, y)
    np.testing.assert_allclose([c.vector @ d.vector for d in dirs], [0.0, 0.0], atol=1e-6)


def test_edit_moves_the_projection_linearly_in_units_of_scale():
    z, y1, _, _, _ = _planted()
    d = fit_direction(z, y1, z, y1)
    strengths = [-2.0, -1.0, 0.0, 1.0, 3.0]
    edited = edit_latents(z[0], d, strengths)
    assert edited.shape == (5, D) and edited.dtype == np.float32
    np.testing.assert_allclose(d.project(edited), z[0] @ d.vector + np.array(strengths) * d.scale, atol=1e-5)
    # moving along the direction leaves the orthogonal part alone
    rest = edited - np.outer(d.project(edited), d.vector)
    np.testing.assert_allclose(rest, np.broadcast_to(z[0] - (z[0] @ d.vector) * d.vector, rest.shape), atol=1e-5)
    assert edit_latents(z[:4], d, strengths).shape == (4, 5, D)


def test_directions_round_trip_through_json(tmp_path):
    z, y1, y2, _, _ = _planted()
    dirs = [fit_direction(z, y1, z, y1, name="a"), fit_direction(z, y2, z, y2, method="logistic", name="b")]
    path = save_directions(tmp_path / "directions.json", dirs)
    back = load_directions(path)
    for d, e in zip(dirs, back):
        assert (d.name, d.method, d.threshold, d.scale, d.probe_accuracy) == (
            e.name, e.method, e.threshold, e.scale, e.probe_accuracy)
        np.testing.assert_array_equal(d.vector, e.vector)


def test_one_class_and_bad_labels_are_errors():
    z = np.zeros((10, D))
    with pytest.raises(ValueError, match="both classes"):
        fit_direction(z, np.ones(10), z, np.ones(10), name="x")
    with pytest.raises(ValueError, match="0/1"):
        fit_direction(z, np.arange(10) % 3, z, np.arange(10) % 2)
    with pytest.raises(ValueError, match="must agree"):
        fit_direction(np.eye(10, D), np.arange(10) % 2, np.zeros((10, D + 1)), np.arange(10) % 2)
    with pytest.raises(ValueError, match="method"):
        fit_direction(z, np.arange(10) % 2, z, np.arange(10) % 2, method="svm")
    with pytest.raises(ValueError, match="unit"):
        AttributeDirection.from_dict({"name": "x", "method": "mean", "vector": [1.0, 1.0], "threshold": 0,
                                      "scale": 1, "probe_accuracy": 1})


def _image_set(n, rng, split):
    """Labels (3 classes), a binary, a 3-valued, a continuous and a constant factor; codes planting each."""
    labels = rng.integers(0, 3, n)
    mask, hair, size = rng.integers(0, 2, n), rng.integers(0, 3, n), rng.uniform(0, 1, n)
    factors = np.stack([mask, hair, size, np.zeros(n)], 1).astype(np.float32)
    images = np.zeros((n, 1, 2, 2), np.uint8)
    ds = ImageSet(images, "synthetic", labels=labels, class_names=("a", "b", "c"), factors=factors,
                  factor_names=("mask_on", "hair_color", "size", "flat"),
                  factor_values={"mask_on": ("off", "on"), "hair_color": ("black", "brown", "blond"),
                                 "flat": ("only",)}, split=split)
    z = 0.3 * rng.standard_normal((n, D))
    z[np.arange(n), labels] += 3.0  # classes on axes 0-2
    z[:, 3] += 3.0 * mask
    z[np.arange(n), 4 + hair] += 3.0  # hair values on axes 4-6
    z[:, 7] += 3.0 * size
    return z, ds


def test_directions_for_an_image_set_covers_labels_and_every_factor_kind():
    rng = np.random.default_rng(0)
    z_train, train = _image_set(600, rng, "train")
    z_test, test = _image_set(300, rng, "test")
    dirs = directions_for(z_train, train, z_test, test)
    names = [d.name for d in dirs]
    assert names == ["class=a", "class=b", "class=c", "mask_on",
                     "hair_color=black", "hair_color=brown", "hair_color=blond", "size"]  # 'flat' is constant
    expected_axis = [0, 1, 2, 3, 4, 5, 6, 7]
    for d, axis in zip(dirs, expected_axis):
        assert int(np.argmax(np.abs(d.vector))) == axis and d.vector[axis] > 0.7, d.name
        assert d.probe_accuracy > 0.9, d.name


def test_real_mnist_digit_directions_beat_the_majority_rate(mnist_test):
    """One-vs-rest digit directions on real MNIST 'codes' (7x7 average-pooled pixels): a linear probe finds each."""
    images = mnist_test.subset(slice(0, 5000))
    z = images.images.reshape(5000, 7, 4, 7, 4).mean((2, 4)).reshape(5000, 49) / 255.0
    train, test = images.subset(slice(0, 4000)), images.subset(slice(4000, None))
    dirs = directions_for(z[:4000], train, z[4000:], test, method="logistic")
    assert [d.name for d in dirs] == [f"class={k}" for k in range(10)]
    accuracy = np.array([d.probe_accuracy for d in dirs])
    majority = np.array([1 - np.mean(test.labels == k) for k in range(10)])
    assert (accuracy > majority + 0.02).all() and accuracy.mean() > 0.95
