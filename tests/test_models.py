"""Contract tests over every registered objective, known-answer tests for the maths, and error tests."""
from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from latentspace.data import to_float
from latentspace.models import OBJECTIVES, ModelConfig, build, load_model, save_model
from latentspace.models.objectives.beta_tcvae import kl_estimate, tc_decomposition
from latentspace.models.posterior import DiagonalGaussian, gaussian_kl
from latentspace.train.step import train_step

SMALL = dict(latent_dim=3, width=4, hidden=16)
FAMILY = {"vq-vae": dict(code_dim=1, codebook=16)}  # settings a 3-axis code needs


def tiny(objective: str, shape=(1, 28, 28), **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return build(ModelConfig(image_shape=shape, objective=objective, **{**SMALL, **FAMILY.get(objective, {}), **kw}))


def images(n=6, shape=(1, 28, 28), seed=0) -> torch.Tensor:
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 64, 64), (1, 128, 128)])
def test_shapes_for_every_size(objective, shape):
    model = tiny(objective, shape)
    x = images(2, shape)
    post = model.encode(x)
    assert post.mean.shape == (2, 3)
    out = model.decode(post.mean)
    assert out.shape == (2, *shape)
    assert float(out.detach().min()) >= 0.0 and float(out.detach().max()) <= 1.0
    loss = model.loss(x, dataset_size=100)
    assert loss.loss.ndim == 0 and math.isfinite(float(loss.loss.detach()))
    assert_close(loss.elbo, -(loss.recon_nll + loss.kl))


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_save_load_gives_identical_outputs(objective, tmp_path):
    model = tiny(objective, likelihood="gaussian") if objective == "vae" else tiny(objective)
    save_model(model, tmp_path)
    loaded = load_model(tmp_path)
    x = images()
    model.eval()
    assert loaded.config == model.config
    assert_close(loaded.encode(x).mean, model.encode(x).mean, rtol=0, atol=0)
    z = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    assert_close(loaded.decode(z), model.decode(z), rtol=0, atol=0)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_same_generator_same_sample(objective):
    model = tiny(objective)
    post = model.encode(images())
    a = post.sample(torch.Generator().manual_seed(7))
    b = post.sample(torch.Generator().manual_seed(7))
    c = post.sample(torch.Generator().manual_seed(8))
    assert_close(a, b, rtol=0, atol=0)
    assert (not OBJECTIVES[objective].variational) == torch.equal(a, c)  # only point masses ignore the noise


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_train_step_changes_weights_and_evaluation_does_not(objective):
    model = tiny(objective)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    with torch.no_grad():
        model.elbo(images()) if objective != "ae" else model.loss(images())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    model.train()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    train_step(model, opt, images(), generator=torch.Generator().manual_seed(0), dataset_size=100)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) == len(before)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_loss_falls_on_real_mnist(objective, mnist_test):
    torch.manual_seed(0)
    model = build(ModelConfig(objective=objective, latent_dim=4, width=8, hidden=64, beta=2.0))
    x_all = mnist_test.images[:2000]
    opt = torch.optim.AdamW(model.parameters(), 3e-3)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for step in range(150):
        i = (step * 64) % 1936
        out = model.loss(to_float(x_all[i : i + 64]), generator=gen, dataset_size=2000)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(float(out.recon_nll.detach()))
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.6 * first, (first, last)


def test_ae_has_zero_kl_and_no_density():
    model = tiny("ae")
    x = images()
    out = model.loss(x)
    assert float(out.kl) == 0.0
    assert_close(out.loss, out.recon_nll)
    with pytest.raises(ValueError, match="point mass"):
        model.encode(x).log_prob(torch.zeros(6, 3))


def test_gaussian_kl_closed_form():
    mean = torch.tensor([[0.0, 0.0], [1.0, -2.0]])
    var = torch.tensor([[1.0, 1.0], [0.5, 4.0]])
    # KL(N(m, v) || N(0, 1)) = 0.5 * (v + m^2 - 1 - ln v), summed over axes.
    expected = torch.tensor([0.0, 0.5 * (0.5 + 1 - 1 - math.log(0.5)) + 0.5 * (4 + 4 - 1 - math.log(4.0))])
    assert_close(gaussian_kl(mean, var.log()), expected)
    assert_close(DiagonalGaussian(mean, var.log()).kl(), expected)


def test_log_prob_matches_torch_distributions():
    mean, logvar = torch.randn(5, 4), torch.randn(5, 4)
    z = torch.randn(5, 4)
    ref = torch.distributions.Normal(mean, (0.5 * logvar).exp()).log_prob(z).sum(1)
    assert_close(DiagonalGaussian(mean, logvar).log_prob(z), ref)


def test_tc_terms_sum_to_kl_estimate_and_approach_analytic_kl():
    g = torch.Generator().manual_seed(0)
    mean, logvar = torch.randn(256, 5, generator=g) * 0.8, torch.randn(256, 5, generator=g) * 0.3 - 1.0
    z = DiagonalGaussian(mean, logvar).sample(g)
    t = tc_decomposition(z, mean, logvar, dataset_size=256)
    estimate = kl_estimate(z, mean, logvar)
    assert_close(t.mi + t.tc + t.dwkl, estimate, rtol=1e-5, atol=1e-4)
    analytic = gaussian_kl(mean, logvar).mean()
    assert abs(float(estimate - analytic)) < 0.1 * float(analytic)
    assert float(t.tc) > -1e-3  # total correlation is non-negative up to estimator noise


def test_beta_tcvae_terms_logged():
    model = tiny("beta-tcvae")
    out = model.loss(images(), dataset_size=1000)
    assert set(out.terms) >= {"mi", "tc", "dwkl"}
    assert_close(out.terms["mi"] + out.terms["tc"] + out.terms["dwkl"], out.terms["kl_estimate"], rtol=1e-5, atol=1e-4)


def test_default_likelihood_follows_channels():
    assert ModelConfig(image_shape=(1, 28, 28)).likelihood == "bernoulli"
    assert ModelConfig(image_shape=(3, 64, 64)).likelihood == "gaussian"
    learned = build(ModelConfig(image_shape=(3, 32, 32), **SMALL))
    fixed = build(ModelConfig(image_shape=(3, 32, 32), sigma=0.1, **SMALL))
    assert learned.log_sigma is not None and fixed.log_sigma is None


def test_dynamic_binarisation_only_in_training():
    model = tiny("vae", binarize=True)
    x = images()
    model.train()
    t = model.targets(x, torch.Generator().manual_seed(0))
    assert set(t.unique().tolist()) <= {0.0, 1.0}
    model.eval()
    assert torch.equal(model.targets(x, None), x)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(objective="gan"), "objective"),
        (dict(image_shape=(2, 28, 28)), "image_shape"),
        (dict(image_shape=(1, 28, 32)), "image_shape"),
        (dict(latent_dim=0), "latent_dim"),
        (dict(likelihood="poisson"), "likelihood"),
        (dict(beta=-1.0), "beta"),
    ],
)
def test_config_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ModelConfig(**kwargs)


def test_wrong_image_size_is_a_clear_error():
    model = tiny("vae")
    with pytest.raises(ValueError, match=r"1x32x32.*expects 1x28x28"):
        model.encode(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match="latent"):
        model.decode(torch.zeros(2, 5))


def test_truncated_weights_name_the_file(tmp_path):
    save_model(tiny("vae"), tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ValueError, match="model.safetensors"):
        load_model(tmp_path)


def test_tampered_header_names_the_file(tmp_path):
    save_model(tiny("vae"), tmp_path)
    weights = tmp_path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:20] = b"garbage!!!!!"
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="model.safetensors"):
        load_model(tmp_path)


def test_config_weights_mismatch_names_the_file(tmp_path):
    save_model(tiny("vae"), tmp_path)
    other = tiny("vae", latent_dim=5)
    (tmp_path / "config.json").write_text(
        __import__("json").dumps({"model": other.config.to_dict()}), encoding="utf-8"
    )
    with pytest.raises(ValueError, match=r"model.safetensors.*shape"):
        load_model(tmp_path)
