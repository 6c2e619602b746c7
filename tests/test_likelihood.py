"""ELBO and importance-weighted NLL: known identities, the k = 1 expectation, and the tighter bound for k > 1."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from metrics_fixtures import mnist_split, tiny_mnist_vae

from latentspace.data.transforms import to_float
from latentspace.metrics import likelihood
from latentspace.metrics.likelihood import (
    bits_per_dim,
    elbo_nats,
    importance_weighted_nll,
    log_importance_weights,
    per_image_elbo,
)
from latentspace.models import ModelConfig, build


@pytest.fixture(scope="module")
def vae(mnist_dir):
    return tiny_mnist_vae(mnist_dir)


@pytest.fixture(scope="module")
def digits(mnist_dir):
    return mnist_split(mnist_dir, "test").images[:200]


def test_bits_per_dim_divides_by_pixels_and_ln2():
    assert bits_per_dim(784 * math.log(2.0), (1, 28, 28)) == pytest.approx(1.0)
    assert bits_per_dim(3 * 64 * 64 * math.log(2.0) * 2.5, (3, 64, 64)) == pytest.approx(2.5)


def test_elbo_nats_matches_the_models_own_loss_on_the_same_noise(vae, digits):
    result = elbo_nats(vae, digits, batch_size=len(digits), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        out = vae.loss(to_float(digits), generator=torch.Generator().manual_seed(5))
    assert result.n == 200
    assert result.elbo_nats == pytest.approx(out.elbo.item(), rel=1e-5)
    assert result.recon_nll_nats == pytest.approx(out.recon_nll.item(), rel=1e-5)
    assert result.kl_nats == pytest.approx(out.kl.item(), rel=1e-5)
    assert result.elbo_nats == pytest.approx(-(result.recon_nll_nats + result.kl_nats))
    assert result.bits_per_dim == pytest.approx(-result.elbo_nats / (784 * math.log(2.0)))


def test_elbo_nats_does_not_depend_on_batching_for_a_deterministic_model(digits):
    # The posterior of an image does not depend on its batch mates, so with no noise (ae) batching is exact.
    ae = build(ModelConfig(objective="ae", latent_dim=4, width=4, hidden=16)).eval()
    whole, split = elbo_nats(ae, digits, batch_size=200), elbo_nats(ae, digits, batch_size=33)
    assert whole.kl_nats == 0.0
    assert split.elbo_nats == pytest.approx(whole.elbo_nats, rel=1e-6)


def test_iw_with_one_sample_equals_minus_elbo_in_expectation(vae, digits):
    """IW_1 = log p(x|z) + log p(z) - log q(z|x) is an unbiased estimate of the ELBO (which uses the analytic KL):
    their mean difference over many draws must be within 4 standard errors of 0."""
    g = torch.Generator().manual_seed(0)
    x = to_float(digits)
    with torch.no_grad():
        iw1 = torch.cat([log_importance_weights(vae, x, k=1, generator=g)[0] for _ in range(10)]).double().numpy()
    elbo = np.concatenate([per_image_elbo(vae, digits, generator=g) for _ in range(10)])
    diff = iw1 - elbo  # (2000,) independent draws
    se = diff.std(ddof=1) / math.sqrt(len(diff))
    assert abs(diff.mean()) < 4 * se
    result = importance_weighted_nll(vae, digits, k=1, generator=torch.Generator().manual_seed(1))
    assert result.k == 1 and result.n == 200
    assert result.nll_nats == pytest.approx(-elbo.mean(), abs=5 * elbo.std() / math.sqrt(200))


def test_iw_with_64_samples_is_a_tighter_bound_than_the_elbo(vae, digits):
    g = torch.Generator().manual_seed(2)
    minus_elbo = -per_image_elbo(vae, digits, n_samples=16, generator=g).mean()
    iw = importance_weighted_nll(vae, digits, k=64, generator=g)
    assert iw.nll_nats < minus_elbo - 0.5  # k = 64 closes part of the gap to log p(x), typically nats
    assert iw.bits_per_dim == pytest.approx(iw.nll_nats / (784 * math.log(2.0)))


def test_iw_result_does_not_depend_on_how_samples_are_split_for_decoding(vae, digits, monkeypatch):
    monkeypatch.setattr(likelihood, "batch_rows", lambda shape: 400)  # all 8 samples x 50 images in one pass
    whole = importance_weighted_nll(vae, digits[:50], k=8, batch_size=50, generator=torch.Generator().manual_seed(3))
    monkeypatch.setattr(likelihood, "batch_rows", lambda shape: 120)  # 2 samples x 50 images per pass
    split = importance_weighted_nll(vae, digits[:50], k=8, batch_size=50, generator=torch.Generator().manual_seed(3))
    assert split.nll_nats == pytest.approx(whole.nll_nats, rel=1e-6)


def test_per_image_elbo_averages_posterior_samples(vae, digits):
    one = np.stack([per_image_elbo(vae, digits[:20], generator=torch.Generator().manual_seed(s)) for s in range(64)])
    many = per_image_elbo(vae, digits[:20], n_samples=64, generator=torch.Generator().manual_seed(99))
    assert many.shape == (20,)
    # Same expectation; averaging 64 samples, the per-image value sits within 4 SE of the 64 single draws' mean.
    np.testing.assert_array_less(np.abs(many - one.mean(0)), 4 * one.std(0, ddof=1) / 8 * math.sqrt(2) + 1e-6)


def test_an_autoencoder_has_no_importance_weighted_bound():
    ae = build(ModelConfig(objective="ae", latent_dim=4, width=4, hidden=16))
    images = np.zeros((3, 1, 28, 28), np.uint8)
    with pytest.raises(ValueError, match="posterior density.*'ae'"):
        importance_weighted_nll(ae, images)


def test_bad_inputs_are_value_errors(vae):
    with pytest.raises(ValueError, match="uint8"):
        elbo_nats(vae, np.zeros((2, 1, 28, 28), np.float32))
    with pytest.raises(ValueError, match="k >= 1"):
        importance_weighted_nll(vae, np.zeros((2, 1, 28, 28), np.uint8), k=0)
