"""Prior and GMM samplers: caller-owned randomness, EM fixed points, known densities, JSON state."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.mixture import GaussianMixture

from latentspace.latent.samplers import GMMSampler, PriorSampler


def _two_clusters(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[-10.0, 0.0, 0.0], [10.0, 5.0, 0.0]])
    which = rng.integers(0, 2, n)
    return centres[which] + rng.standard_normal((n, 3)), centres


def test_prior_draws_standard_normal_reproducibly_from_either_generator():
    prior = PriorSampler(4)
    a = prior.sample(20_000, np.random.default_rng(0))
    assert a.shape == (20_000, 4) and a.dtype == np.float32
    np.testing.assert_allclose(a.mean(0), 0.0, atol=0.03)
    np.testing.assert_allclose(a.std(0), 1.0, atol=0.03)
    np.testing.assert_array_equal(a, prior.sample(20_000, np.random.default_rng(0)))
    t1 = prior.sample(5, torch.Generator().manual_seed(3))
    np.testing.assert_array_equal(t1, prior.sample(5, torch.Generator().manual_seed(3)))
    assert not np.array_equal(t1, prior.sample(5, torch.Generator().manual_seed(4)))
    np.testing.assert_allclose(prior.log_prob(np.zeros((1, 4))), [-2 * np.log(2 * np.pi)])


def test_prior_refuses_a_missing_generator():
    with pytest.raises(TypeError, match="generator"):
        PriorSampler(2).sample(3, None)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "tied", "spherical"])
def test_weighted_component_means_equal_the_data_mean(covariance_type):
    z = np.random.default_rng(1).standard_normal((500, 3)) * [1.0, 2.0, 0.5] + [1.0, -2.0, 3.0]
    gmm = GMMSampler(4, covariance_type=covariance_type).fit(z)
    assert gmm.weights_.shape == (4,) and gmm.means_.shape == (4, 3)
    np.testing.assert_allclose(gmm.weights_ @ gmm.means_, z.mean(0), atol=1e-6)


def test_samples_fall_near_the_clusters_in_their_proportions():
    z, centres = _two_clusters()
    gmm = GMMSampler(2).fit(z)
    s = gmm.sample(4000, np.random.default_rng(0))
    assert s.shape == (4000, 3) and s.dtype == np.float32
    dist = np.linalg.norm(s[:, None, :] - centres[None], axis=2)
    assert dist.min(1).max() < 6.0  # a unit Gaussian in 3-D essentially never strays 6 std
    share = np.mean(dist.argmin(1) == 0)
    assert share == pytest.approx(np.mean(np.linalg.norm(z - centres[0], axis=1) < 5), abs=0.04)


def test_sampling_is_reproducible_with_the_callers_generator():
    z, _ = _two_clusters()
    gmm = GMMSampler(2).fit(z)
    np.testing.assert_array_equal(gmm.sample(50, np.random.default_rng(7)), gmm.sample(50, np.random.default_rng(7)))
    t = gmm.sample(50, torch.Generator().manual_seed(7))
    np.testing.assert_array_equal(t, gmm.sample(50, torch.Generator().manual_seed(7)))
    assert not np.array_equal(t, gmm.sample(50, torch.Generator().manual_seed(8)))


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_log_prob_matches_sklearn(covariance_type):
    z, _ = _two_clusters(400)
    ours = GMMSampler(3, covariance_type=covariance_type, seed=5).fit(z)
    ref = GaussianMixture(3, covariance_type=covariance_type, random_state=5, reg_covar=1e-6, max_iter=200).fit(z)
    np.testing.assert_allclose(ours.log_prob(z[:50]), ref.score_samples(z[:50]), rtol=1e-8)


def test_sample_covariance_matches_the_fitted_one():
    rng = np.random.default_rng(2)
    cov = np.array([[2.0, 1.2], [1.2, 1.0]])
    z = rng.multivariate_normal([1.0, -1.0], cov, size=3000)
    gmm = GMMSampler(1).fit(z)
    s = gmm.sample(20_000, np.random.default_rng(3))
    np.testing.assert_allclose(np.cov(s.T), gmm.covariances_[0], atol=0.08)


def test_state_round_trips_through_json():
    z, _ = _two_clusters()
    gmm = GMMSampler(2, covariance_type="diag", seed=3).fit(z)
    back = GMMSampler.from_dict(json.loads(json.dumps(gmm.to_dict())))
    assert (back.n_components, back.covariance_type, back.seed) == (2, "diag", 3)
    np.testing.assert_array_equal(back.sample(10, np.random.default_rng(0)), gmm.sample(10, np.random.default_rng(0)))
    np.testing.assert_allclose(back.log_prob(z[:5]), gmm.log_prob(z[:5]))


def test_bad_state_and_arguments_are_errors():
    z, _ = _two_clusters(50)
    with pytest.raises(ValueError, match="covariance_type"):
        GMMSampler(2, covariance_type="banded").fit(z)
    with pytest.raises(ValueError, match="n_components=100"):
        GMMSampler(100).fit(z)
    with pytest.raises(ValueError, match="not fitted"):
        GMMSampler(2).sample(3, np.random.default_rng(0))
    state = GMMSampler(2).fit(z).to_dict()
    state["covariances"] = state["covariances"][0]
    with pytest.raises(ValueError, match=r"covariances .*\(2, 3, 3\)"):
        GMMSampler.from_dict(state)
