"""On-manifold scores and separation metrics (metrics.ood, metrics.separation): known answers on constructed
numbers, and the scores' identities on a tiny untrained model (no training, no data files)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from latentspace.data.transforms import to_float
from latentspace.latent.codes import encode_images
from latentspace.latent.samplers import GMMSampler
from latentspace.metrics.framing import FramingModel
from latentspace.metrics.likelihood import per_image_elbo
from latentspace.metrics.ood import (
    COMBINED_FROM,
    ManifoldScores,
    combined_score,
    complexity_corrected_nll,
    iw_nll,
    log_tail_probability,
    manifold_scores,
    percentile_of,
    png_bits,
    reconstruction_error,
    tail_scale,
)
from latentspace.metrics.separation import aupr, auroc, fpr_at_tpr, separation
from latentspace.models import ModelConfig, build

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- separation: known answers ---------------------------------------------------------------------------------


def test_auroc_is_one_for_separated_lists_and_one_half_for_identical_ones():
    real, other = np.arange(100.0), np.arange(100.0) + 1000
    assert auroc(real, other) == 1.0
    assert auroc(other, real) == 0.0  # the score points the wrong way
    assert auroc(real, real.copy()) == 0.5
    assert auroc(np.full(7, 3.0), np.full(5, 3.0)) == 0.5  # every pair tied
    # 4 of the 3 x 3 = 9 pairs have other > real, one is tied: (4 + 0.5) / 9
    assert auroc([1.0, 2.0, 4.0], [0.0, 2.0, 3.0]) == pytest.approx(3.5 / 9)


def test_aupr_and_fpr_at_tpr_on_constructed_lists():
    real, other = np.arange(100.0), np.arange(100.0) + 1000
    assert aupr(real, other) == 1.0 and fpr_at_tpr(real, other) == 0.0
    # other = 50..149: the highest threshold keeping 95 of the 100 others is 55, and 45 of the reals reach it
    assert fpr_at_tpr(np.arange(100.0), np.arange(50.0, 150.0)) == pytest.approx(0.45)
    assert fpr_at_tpr(np.zeros(10), np.zeros(10)) == 1.0
    # identical lists: precision is the positive fraction at every threshold
    assert aupr(np.zeros(30), np.zeros(10)) == pytest.approx(0.25)
    s = separation(real, other)
    assert (s.auroc, s.aupr, s.fpr_at_tpr, s.tpr, s.n_real, s.n_other) == (1.0, 1.0, 0.0, 0.95, 100, 100)


def test_separation_refuses_empty_or_nan_scores():
    with pytest.raises(ValueError, match="0 real and 3 other"):
        auroc([], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        auroc([1.0, np.nan], [2.0])
    with pytest.raises(ValueError, match="tpr must be in"):
        fpr_at_tpr([1.0], [2.0], tpr=0.0)


# -- calibration against a reference ---------------------------------------------------------------------------


def tail_p(values, reference, leave_one_out=False):
    return np.exp(log_tail_probability(values, reference, leave_one_out))


def test_percentile_and_tail_probability_known_values():
    ref = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(percentile_of([0.0, 2.0, 2.5, 5.0], ref), [0.0, 37.5, 50.0, 100.0])
    np.testing.assert_allclose(tail_p([0.0, 2.5, 4.0], ref), [5 / 5, 3 / 5, 2 / 5])
    # past the largest value: the exponential tail of the top 1% (here the top value, 1 above the next)
    assert tail_scale(ref) == 1.0
    np.testing.assert_allclose(log_tail_probability([4.5, 6.0, 1e6], ref), -np.array([0.5, 2.0, 1e6 - 4]) - math.log(5))
    # a flat tail cannot be extrapolated: everything past it gets the floor 1 / (M + 1)
    np.testing.assert_allclose(tail_p([2.0, 9.0], np.ones(4)), [1 / 5, 1 / 5])
    np.testing.assert_allclose(tail_p(ref, ref, leave_one_out=True), [4 / 4, 3 / 4, 2 / 4, math.exp(-1) / 4])


def test_leave_one_out_scores_each_reference_value_as_a_new_one():
    ref = np.random.default_rng(0).normal(size=50)
    loo = log_tail_probability(ref, ref, leave_one_out=True)
    for i in range(len(ref)):
        assert loo[i] == pytest.approx(log_tail_probability(ref[i : i + 1], np.delete(ref, i))[0])


def test_combined_score_is_fisher_over_the_columns_and_calibrated():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(2000, 3))
    typical = np.array([[-100.0, -100.0, -100.0]])  # below every reference value: p = 1 on each column
    assert combined_score(typical, reference)[0] == 0.0
    calibrated = combined_score(reference, reference, leave_one_out=True)
    # Fisher's statistic of three uniform p-values is Gamma(3, 1): its 99th percentile is 8.41
    assert np.percentile(calibrated, 99) == pytest.approx(8.41, abs=0.6)
    # just past every reference value on one column, typical on the others: log(M + 1) < 8.41, still on
    edge = combined_score(np.array([[reference[:, 0].max() + 1e-9, -100.0, -100.0]]), reference)
    assert edge[0] == pytest.approx(math.log(2001))
    # far past it: the extrapolated tail makes that one score decisive
    far_value = reference[:, 0].max() + 10 * tail_scale(reference[:, 0])
    far = combined_score(np.array([[far_value, -100.0, -100.0]]), reference)
    assert far[0] == pytest.approx(math.log(2001) + 10)
    assert far[0] > np.percentile(calibrated, 99)
    with pytest.raises(ValueError, match="same columns"):
        combined_score(np.zeros((2, 3)), np.zeros((5, 2)))


# -- the scores --------------------------------------------------------------------------------------------------


def test_png_bits_orders_constant_digit_like_and_noise_images():
    rng = np.random.default_rng(0)
    constant = np.zeros((1, 1, 28, 28), np.uint8)
    stroke = constant.copy()
    stroke[0, 0, 6:22, 12:16] = 255
    noise = rng.integers(0, 256, (1, 1, 28, 28), dtype=np.uint8)
    bits = png_bits(np.concatenate([constant, stroke, noise]))
    assert bits[0] < bits[1] < bits[2]
    assert bits[2] >= 28 * 28 * 8  # uniform 8-bit noise does not compress
    assert png_bits(rng.integers(0, 256, (2, 3, 8, 8), dtype=np.uint8)).shape == (2,)
    with pytest.raises(ValueError, match="uint8 images"):
        png_bits(np.zeros((1, 2, 8, 8), np.uint8))


def test_png_bits_on_threads_keep_every_image_in_its_place(monkeypatch):
    rng = np.random.default_rng(1)
    images = (rng.random((300, 1, 16, 16)) < rng.random((300, 1, 1, 1))).astype(np.uint8) * 255  # sizes differ
    one_by_one = np.array([png_bits(image[None])[0] for image in images])
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    np.testing.assert_array_equal(png_bits(images), one_by_one)


def test_complexity_correction_is_nll_in_bits_minus_png_bits():
    images = np.random.default_rng(0).integers(0, 256, (3, 1, 8, 8), dtype=np.uint8)
    nll = np.array([10.0, 20.0, 30.0])
    np.testing.assert_allclose(complexity_corrected_nll(nll, images), nll / math.log(2) - png_bits(images))
    with pytest.raises(ValueError, match=r"expected \(3,\)"):
        complexity_corrected_nll(nll[:2], images)


@pytest.fixture(scope="module")
def tiny():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build(ModelConfig(image_shape=(1, 16, 16), latent_dim=3, width=4, hidden=16)).eval()


@pytest.fixture(scope="module")
def gmm():
    return GMMSampler(2, seed=0).fit(np.random.default_rng(0).normal(size=(200, 3)))


@pytest.fixture(scope="module")
def framing():
    return FramingModel.fit(np.random.default_rng(3).integers(0, 256, (50, 1, 16, 16), dtype=np.uint8))


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(2).integers(0, 256, (12, 1, 16, 16), dtype=np.uint8)


def test_iw_bound_is_below_the_k_sample_elbo_image_by_image(tiny, gmm, framing, images):
    s = manifold_scores(tiny, images, gmm, framing, k=16, batch_size=5, generator=torch.Generator().manual_seed(0))
    assert s.nll.shape == s.elbo.shape == (12,) and s.z.shape == (12, 3) and s.k == 16
    # both come from the same log weights: log mean exp >= mean (Jensen), so -IW_k <= -ELBO_k for every image
    assert (s.nll <= -s.elbo + 1e-9).all()
    # the k-sample ELBO estimates what per_image_elbo (analytic KL) estimates
    reference = per_image_elbo(tiny, images, n_samples=64, generator=torch.Generator().manual_seed(1))
    np.testing.assert_allclose(s.elbo, reference, rtol=0.02)
    # same generator seed, same numbers; iw_nll is the same pass
    again = iw_nll(tiny, images, k=16, batch_size=5, generator=torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(again, s.nll)


def test_scores_match_their_definitions(tiny, gmm, framing, images):
    s = manifold_scores(tiny, images, gmm, framing, k=4, generator=torch.Generator().manual_seed(0))
    z = encode_images(tiny, images)
    np.testing.assert_allclose(s.z, z, atol=1e-6)
    np.testing.assert_allclose(s.code_density, -gmm.log_prob(z), rtol=1e-5)
    with torch.no_grad():
        x = to_float(images)
        expected = ((tiny.decode(torch.as_tensor(z)) - x) ** 2).mean((1, 2, 3)).numpy()
    np.testing.assert_allclose(s.recon, expected, rtol=1e-5)
    np.testing.assert_allclose(reconstruction_error(tiny, images), s.recon)
    np.testing.assert_allclose(s.complexity, complexity_corrected_nll(s.nll, images))
    np.testing.assert_array_equal(s.framing, framing.score(images))
    assert s.table().shape == (12, len(COMBINED_FROM))
    np.testing.assert_array_equal(s.table(("nll",))[:, 0], s.nll)
    joined = ManifoldScores.concatenate([s.take(slice(0, 5)), s.take(slice(5, None))])
    np.testing.assert_array_equal(joined.table(), s.table())


def test_an_autoencoder_without_posterior_density_scores_its_reconstruction_nll(gmm, framing, images):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        ae = build(ModelConfig(image_shape=(1, 16, 16), latent_dim=3, width=4, hidden=16, objective="ae")).eval()
    s = manifold_scores(ae, images, gmm, framing, k=8)
    with torch.no_grad():
        x = to_float(images)
        expected = ae.recon_nll(ae.decode_params(ae.encode(x).mean), x).numpy()
    np.testing.assert_allclose(s.nll, expected, rtol=1e-5)
    np.testing.assert_array_equal(s.elbo, -s.nll)


def test_scores_refuse_wrong_images(tiny, gmm, framing):
    with pytest.raises(ValueError):
        manifold_scores(tiny, np.zeros((2, 1, 28, 28), np.uint8), gmm, framing)
    with pytest.raises(ValueError, match="k and batch_size"):
        manifold_scores(tiny, np.zeros((2, 1, 16, 16), np.uint8), gmm, framing, k=0)
