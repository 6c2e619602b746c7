"""Realness scores: nearest-image distances with known answers, classifier confidence and ELBO on real vs
unreal images, and the pair table over pixel / lerp / slerp paths."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from metrics_fixtures import mnist_evaluator, mnist_split, tiny_mnist_vae

from latentspace.latent.interpolate import interpolation_paths
from latentspace.metrics.evaluator import EvaluatorConfig, Head, build_evaluator
from latentspace.metrics.realness import (
    ALL_HEADS,
    FRAME_HEADER,
    MANIFOLD_K,
    PATHS,
    RealnessTable,
    nearest_distance,
    on_manifold,
    pair_table,
    path_realness,
    random_pairs,
    realness_scores,
    reference_images,
)
from latentspace.metrics.sharpness import hf_share, hf_shares


@pytest.fixture(scope="module")
def vae(mnist_dir):
    return tiny_mnist_vae(mnist_dir)


@pytest.fixture(scope="module")
def evaluator(mnist_dir):
    return mnist_evaluator(mnist_dir)


@pytest.fixture(scope="module")
def test_set(mnist_dir):
    return mnist_split(mnist_dir, "test").subset(slice(0, 2000))


@pytest.fixture(scope="module")
def train_images(mnist_dir):
    return mnist_split(mnist_dir, "train").images


def brute_force_nearest(images: np.ndarray, train: np.ndarray, block: int = 5000) -> np.ndarray:
    """Direct min over training images of sqrt(mean((x - t)^2)), no matrix-product shortcut."""
    x = images.reshape(len(images), 1, -1).astype(np.float32) / 255.0
    best = np.full(len(images), np.inf)
    for i in range(0, len(train), block):
        t = train[i : i + block].reshape(1, -1, x.shape[-1]).astype(np.float32) / 255.0
        best = np.minimum(best, np.sqrt(((x - t) ** 2).mean(-1)).min(1))
    return best


def test_nearest_distance_hand_computed_case():
    train = np.array([[0, 0, 0, 0], [255, 255, 255, 255]], np.uint8).reshape(2, 1, 2, 2)
    query = np.array([[0, 51, 102, 255], [255, 255, 255, 255]], np.uint8).reshape(2, 1, 2, 2)
    # To the black image: sqrt((0 + 0.2^2 + 0.4^2 + 1^2) / 4) = sqrt(0.3); to the white one: sqrt(0.5).
    np.testing.assert_allclose(nearest_distance(query, train), [math.sqrt(0.3), 0.0], rtol=1e-6)


def test_nearest_distance_matches_brute_force_across_chunk_boundaries():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (53, 1, 4, 4), dtype=np.uint8)
    query = np.concatenate([rng.integers(0, 256, (20, 1, 4, 4), dtype=np.uint8), train[[7, 52]]])
    got = nearest_distance(query, train, chunk=8)  # 7 train blocks, 3 query blocks
    np.testing.assert_allclose(got, brute_force_nearest(query, train), rtol=1e-5)
    assert got[-2] == 0.0 and got[-1] == 0.0


def test_a_training_image_is_at_distance_zero_among_60000(train_images, test_set):
    queries = np.concatenate([train_images[[0, 31_415, 59_999]], test_set.images[:3]])
    got = nearest_distance(queries, train_images)
    np.testing.assert_array_equal(got[:3], 0.0)
    np.testing.assert_allclose(got[3:], brute_force_nearest(test_set.images[:3], train_images), rtol=1e-5)
    assert np.all(got[3:] > 0.02)  # test digits are new images


def test_nearest_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same \\(C, H, W\\)"):
        nearest_distance(np.zeros((1, 1, 4, 4), np.uint8), np.zeros((2, 1, 5, 5), np.uint8))


def test_classifier_confidence_is_high_on_real_digits_and_lower_on_cross_fades(vae, evaluator, test_set):
    real = realness_scores(test_set.images[:500], vae, evaluator)
    assert real.classifier_confidence.shape == (500,)
    assert real.classifier_confidence.mean() > 0.95
    labels = test_set.labels
    a = np.flatnonzero(labels == 1)[:50]
    b = np.flatnonzero(labels == 0)[:50]
    blends = ((test_set.images[a].astype(np.uint16) + test_set.images[b]) // 2).astype(np.uint8)
    blended = realness_scores(blends, vae, evaluator)
    assert blended.classifier_confidence.mean() < real.classifier_confidence.mean() - 0.05


def test_default_confidence_is_the_mean_over_heads_of_each_heads_top_probability(vae, test_set):
    """Two heads, one made sure of itself (a large bias on one class), one not: the default confidence is their
    mean, not either head alone; naming a head still scores that head only."""
    config = EvaluatorConfig((1, 28, 28), (Head("a", 2, ("x", "y")), Head("b", 5, ("p", "q", "r", "s", "t"))))
    evaluator = build_evaluator(config)
    with torch.no_grad():
        evaluator.heads["b"].bias[2] = 8.0
    images = test_set.images[:20]
    probs = evaluator.predict_proba(images)
    top_a, top_b = probs["a"].max(1).astype(np.float64), probs["b"].max(1).astype(np.float64)
    assert (top_b - top_a).min() > 0.2  # the two heads disagree, so the mean differs from each
    scores = realness_scores(images, vae, evaluator)
    np.testing.assert_allclose(scores.classifier_confidence, (top_a + top_b) / 2, rtol=1e-6)
    np.testing.assert_array_equal(realness_scores(images, vae, evaluator, head="a").classifier_confidence, top_a)
    table = pair_table(vae, test_set, None, evaluator, n_pairs=2, steps=2, middle=(0.0, 1.0))
    assert table.head == ALL_HEADS == "mean of all heads" and table.to_dict()["head"] == ALL_HEADS
    assert pair_table(vae, test_set, None, evaluator, n_pairs=2, steps=2, middle=(0.0, 1.0), head="b").head == "b"


def test_elbo_of_real_digits_beats_elbo_of_noise(vae, test_set):
    noise = np.random.default_rng(0).integers(0, 256, (100, 1, 28, 28), dtype=np.uint8)
    g = torch.Generator().manual_seed(0)
    real = realness_scores(test_set.images[:100], vae, generator=g).elbo
    fake = realness_scores(noise, vae, generator=g).elbo
    assert real.shape == fake.shape == (100,)
    assert real.min() > fake.max()


def test_without_evaluator_or_train_images_those_scores_are_absent(vae, test_set):
    scores = realness_scores(test_set.images[:4], vae)
    assert scores.classifier_confidence is None
    assert np.isnan(scores.nearest_distance).all() and np.isfinite(scores.elbo).all()


def test_path_realness_scores_each_path_like_scoring_it_alone(vae, evaluator, test_set, train_images):
    paths = interpolation_paths(vae, test_set.images[0], test_set.images[1], steps=5)
    train = train_images[:3000]
    scored = path_realness(paths, vae, evaluator, train, torch.Generator().manual_seed(0))
    assert list(scored) == list(PATHS)
    for name in PATHS:
        alone = realness_scores(getattr(paths, name), vae, evaluator, train_images=train)
        assert scored[name].elbo.shape == (5,)
        np.testing.assert_allclose(scored[name].classifier_confidence, alone.classifier_confidence, rtol=1e-5)
        np.testing.assert_array_equal(scored[name].nearest_distance, alone.nearest_distance)


def test_random_pairs_are_seeded_distinct_and_in_range():
    pairs = random_pairs(5, 2000, seed=1)
    assert pairs.shape == (2000, 2) and pairs.min() >= 0 and pairs.max() <= 4
    assert np.all(pairs[:, 0] != pairs[:, 1])
    np.testing.assert_array_equal(pairs, random_pairs(5, 2000, seed=1))
    # Uniform over the 20 ordered pairs: every one appears, none far from 100 times.
    counts = np.bincount(pairs[:, 0] * 5 + pairs[:, 1], minlength=25)
    assert np.all(counts[[i * 5 + i for i in range(5)]] == 0)
    assert counts[counts > 0].size == 20 and counts[counts > 0].min() > 60


def test_real_images_are_all_on_their_own_manifold_and_noise_is_off_it(evaluator, test_set, mnist_test,
                                                                        train_images):
    real = test_set.images[:1000]
    assert on_manifold(evaluator, real, real.copy()).all()  # identical sets: precision 1
    assert on_manifold(evaluator, train_images[:500], mnist_test.images).mean() > 0.8  # other digits: mostly on it
    noise = np.random.default_rng(0).integers(0, 256, (300, 1, 28, 28), dtype=np.uint8)
    assert on_manifold(evaluator, noise, mnist_test.images).mean() < 0.03  # the 10,000 test digits' manifold


def test_pair_table_rows_numbers_and_json(vae, evaluator, test_set):
    # Scoring against the test images themselves makes the pixel path's ends exact copies: distance 0.
    table = pair_table(vae, test_set, test_set.images, evaluator, n_pairs=12, steps=6, seed=3)
    assert [s.path for s in table.summaries] == list(PATHS)
    assert len(table.rows()) == 3 and table.head == "label"  # one head: the mean over heads is that head
    assert all(len(row) == len(RealnessTable.HEADER) == len(FRAME_HEADER) + 2 for row in table.rows())
    assert table.manifold_k == MANIFOLD_K == 3 and table.n_reference == len(test_set)
    for s in table.summaries:
        values = [s.classifier_confidence, s.elbo, s.nearest_distance]
        ses = [s.classifier_confidence_se, s.elbo_se, s.nearest_distance_se]
        assert np.all(np.isfinite(values)) and np.all(np.isfinite(ses)) and min(ses) > 0
        assert 0.1 <= s.classifier_confidence <= 1.0 and s.elbo < 0 and s.nearest_distance > 0
        assert 0.0 <= s.manifold_precision <= 1.0 and np.isfinite(s.manifold_precision_se)
        assert s.hf_ratio > 0 and s.hf_ratio_se > 0
    pixel = table.curves["pixel"]
    assert pixel["nearest_distance"][0] == 0.0 and pixel["nearest_distance"][-1] == 0.0
    assert pixel["classifier_confidence"][0] > pixel["classifier_confidence"][len(table.t) // 2]
    data = json.loads(json.dumps(table.to_dict(), allow_nan=False))
    assert set(data["paths"]) == set(PATHS) and len(data["curves"]["slerp"]["elbo"]) == 6
    assert data["real_hf_share"] == pytest.approx(hf_share(test_set.images))
    assert {"manifold_precision", "manifold_precision_se", "hf_ratio", "hf_ratio_se"} <= set(data["paths"]["lerp"])
    again = pair_table(vae, test_set, test_set.images, evaluator, n_pairs=12, steps=6, seed=3)
    assert again.to_dict() == table.to_dict()


def test_pair_table_summaries_are_middle_frame_means_over_pairs(vae, test_set):
    """Without an evaluator: confidence is not scored (NaN, '-' in rows, None in JSON), and the summary is the
    mean over pairs of each pair's middle-frame mean, i.e. the mean of the middle of the per-t curve."""
    table = pair_table(vae, test_set, test_set.images[:500], None, n_pairs=8, steps=9, middle=(0.25, 0.75))
    t = table.t
    middle = (t >= 0.25) & (t <= 0.75)
    assert middle.sum() == 5  # t = 0.25, 0.375, 0.5, 0.625, 0.75
    for s in table.summaries:
        assert math.isnan(s.classifier_confidence) and math.isnan(s.manifold_precision)
        assert s.nearest_distance == pytest.approx(table.curves[s.path]["nearest_distance"][middle].mean())
        assert s.hf_ratio == pytest.approx(table.curves[s.path]["hf_ratio"][middle].mean())
    assert all(row[1] == "-" and row[2] == "-" and row[5] != "-" for row in table.rows())
    assert table.to_dict()["paths"]["lerp"]["classifier_confidence"] is None
    assert table.to_dict()["paths"]["lerp"]["manifold_precision"] is None
    with pytest.raises(ValueError, match="holds none"):
        pair_table(vae, test_set, None, None, n_pairs=2, steps=2, middle=(0.4, 0.6))


def test_pair_table_middle_frames_against_the_real_images_by_hand(vae, evaluator, test_set):
    """Manifold precision and the high-frequency ratio of a table, recomputed from its frames: the share of
    middle frames inside the reference's k = 3 balls, and their mean share over the reference's."""
    small = test_set.subset(slice(0, 300))
    table = pair_table(vae, small, None, evaluator, n_pairs=6, steps=5, seed=4)
    pairs = random_pairs(len(small), 6, seed=4)
    middle = (table.t >= 0.25) & (table.t <= 0.75)
    reference = reference_images(small.images, seed=4)
    np.testing.assert_array_equal(reference, small.images)  # 300 <= MANIFOLD_REFERENCE: every test image
    for k, name in enumerate(PATHS):
        frames = np.concatenate([getattr(interpolation_paths(vae, small.images[a], small.images[b], 5), name)[middle]
                                 for a, b in pairs])
        s = table.summaries[k]
        assert s.manifold_precision == pytest.approx(on_manifold(evaluator, frames, reference).mean())
        assert s.hf_ratio == pytest.approx(hf_shares(frames).mean() / hf_share(reference))
    print({s.path: (round(s.manifold_precision, 3), round(s.hf_ratio, 3)) for s in table.summaries})


def test_reference_images_are_a_seeded_subset_when_there_are_many():
    images = np.arange(20, dtype=np.uint8).reshape(20, 1, 1, 1)
    picked = reference_images(images, seed=1, n=5)
    assert picked.shape == (5, 1, 1, 1) and np.all(np.diff(picked.ravel()) > 0)
    np.testing.assert_array_equal(picked, reference_images(images, seed=1, n=5))
    assert reference_images(images, seed=1, n=20) is images
