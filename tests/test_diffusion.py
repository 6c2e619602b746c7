"""The latent diffusion prior: it learns a known Gaussian mixture, samples deterministically for a seed, and is
stored in and read back from a run folder, keyed to the weights it was fitted for."""
from __future__ import annotations


import numpy as np
import pytest
from latent_runs import retrain, run_copy
from typer.testing import CliRunner

from latentspace import api
from latentspace.api.priors import stored_diffusion
from latentspace.cli.main import app
from latentspace.latent.diffusion import DiffusionConfig, DiffusionPrior, cosine_alpha_bar

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = dict(hidden=64, blocks=2, train_steps=2000, batch_size=256)


@pytest.fixture(scope="module")
def mixture():
    """4,000 codes of a 3-component mixture in 4-d with well separated means."""
    rng = np.random.default_rng(0)
    means = np.array([[3, 0, 0, 1], [-3, 2, 0, 0], [0, -3, 2, -1]], np.float64)
    component = rng.integers(0, 3, 4000)
    z = means[component] + rng.normal(0, 0.4, (4000, 4))
    return z.astype(np.float32), means


@pytest.fixture(scope="module")
def fitted(mixture):
    z, _ = mixture
    return DiffusionPrior(DiffusionConfig(latent_dim=4, **SMALL)).fit(z)


def test_samples_match_the_mixtures_mean_covariance_and_modes(mixture, fitted):
    z, means = mixture
    s = fitted.sample(4000, np.random.default_rng(1))
    # Stated tolerance: 0.15 on each mean and 0.35 on each covariance entry, for variances up to about 7.
    np.testing.assert_allclose(s.mean(0), z.mean(0), atol=0.15)
    np.testing.assert_allclose(np.cov(s.T), np.cov(z.T), atol=0.35)
    nearest = ((s[:, None] - means[None]) ** 2).sum(-1)
    share = np.bincount(nearest.argmin(1), minlength=3) / len(s)
    np.testing.assert_allclose(share, np.bincount(((z[:, None] - means[None]) ** 2).sum(-1).argmin(1)) / len(z),
                               atol=0.06)
    assert np.sqrt(nearest.min(1) / 4).mean() < 0.6  # samples sit on the modes (their spread is 0.4), not between


def test_sampling_is_deterministic_for_a_seed(fitted):
    a = fitted.sample(50, np.random.default_rng(7))
    np.testing.assert_array_equal(a, fitted.sample(50, np.random.default_rng(7)))
    assert not np.array_equal(a, fitted.sample(50, np.random.default_rng(8)))
    assert fitted.sample(5, np.random.default_rng(7), steps=10).shape == (5, 4)


def test_state_round_trips(fitted):
    tensors, meta = fitted.state()
    again = DiffusionPrior.from_state(tensors, meta)
    np.testing.assert_array_equal(again.sample(20, np.random.default_rng(3)), fitted.sample(20, np.random.default_rng(3)))


def test_schedule_and_bad_inputs():
    a = cosine_alpha_bar(1000)
    assert a[0] == 1 and (a[1:] < a[:-1]).all() and a[-1] < 1e-4
    with pytest.raises(ValueError, match="train_steps must be >= 1"):
        DiffusionConfig(latent_dim=4, train_steps=0)
    with pytest.raises(ValueError, match="not fitted"):
        DiffusionPrior(DiffusionConfig(latent_dim=4)).sample(3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="codes must be finite"):
        DiffusionPrior(DiffusionConfig(latent_dim=4)).fit(np.full((10, 4), np.nan, np.float32))


def test_the_run_stores_the_prior_until_the_model_changes(tmp_path_factory):
    run_dir = run_copy("faces", tmp_path_factory)
    run, model = api.open_model(run_dir, "cpu")
    config = DiffusionConfig(latent_dim=model.config.latent_dim, **{**SMALL, "train_steps": 100})
    first = api.fitted_diffusion(run, model, config)
    assert (run_dir / api.DIFFUSION_WEIGHTS).is_file() and (run_dir / api.DIFFUSION_META).is_file()
    stored = stored_diffusion(run, config)
    np.testing.assert_array_equal(stored.sample(10, np.random.default_rng(0)), first.sample(10, np.random.default_rng(0)))
    assert stored_diffusion(run, DiffusionConfig(latent_dim=model.config.latent_dim, **{**SMALL, "seed": 1})) is None
    retrain(run_dir)
    assert stored_diffusion(run, config) is None  # new weights: the stored prior is stale


def test_cli_samples_to_npz(tmp_path_factory, tmp_path):
    run_dir = run_copy("faces", tmp_path_factory)
    out = tmp_path / "s.npz"
    result = CliRunner().invoke(app, ["sample", str(run_dir), "-n", "7", "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    with np.load(out, allow_pickle=False) as f:
        assert f["images"].shape == (7, 3, 32, 32) and f["images"].dtype == np.uint8
        assert f["z"].shape == (7, 8) and f["z"].dtype == np.float32
    bad = CliRunner().invoke(app, ["sample", str(run_dir), "--sampler", "flow", "--device", "cpu"])
    assert bad.exit_code != 0 and "prior, gmm, diffusion" in bad.output
