"""Known-answer tests for the model families' maths (IW bound, VampPrior, MMD, codebook, hierarchy), and exact
resume for the families with state of their own (a discriminator, a codebook)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from latentspace.models import ModelConfig, build
from latentspace.models.objectives.hvae import HierarchicalPosterior, HierarchicalPrior, layer_dims
from latentspace.models.objectives.iwae import iw_bound, log_weights
from latentspace.models.objectives.mmd import SCALES, mmd
from latentspace.models.objectives.vamp import VampPrior
from latentspace.models.objectives.vq_vae import Codebook
from latentspace.models.priors import mixture_log_prob
from latentspace.train import TrainConfig, fit
from latentspace.data import ImageSet, to_float

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def digits(mnist_test, n=64) -> torch.Tensor:
    return to_float(mnist_test.images[:n])


@pytest.fixture(scope="module")
def trained_vae(mnist_test):
    """A small VAE fitted for a few hundred steps: IW weights of an untrained model barely differ."""
    torch.manual_seed(0)
    model = build(ModelConfig(latent_dim=4, width=8, hidden=64))
    opt = torch.optim.AdamW(model.parameters(), 3e-3)
    gen = torch.Generator().manual_seed(0)
    x_all = to_float(mnist_test.images[:2000])
    for step in range(200):
        i = (step * 64) % 1936
        out = model.loss(x_all[i : i + 64], generator=gen, dataset_size=2000)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    return model.eval()


# -- iwae -----------------------------------------------------------------------------------------------------


def test_iw_bound_at_k1_is_the_one_sample_elbo(trained_vae, mnist_test):
    x = digits(mnist_test)
    with torch.no_grad():
        log_w, recon, out = log_weights(trained_vae, x, x, 1, torch.Generator().manual_seed(3))
        post = trained_vae.encode(x)
        z = post.sample(torch.Generator().manual_seed(3))
        elbo_mc = -trained_vae.recon_nll(trained_vae.decode_params(z), x) + trained_vae.prior.log_prob(z) - post.log_prob(z)
    assert_close(iw_bound(log_w), elbo_mc, rtol=1e-5, atol=1e-4)


def test_iw_bound_tightens_with_k_and_averages_to_the_elbo_at_k1(trained_vae, mnist_test):
    x = digits(mnist_test, 32)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        means = {k: torch.stack([iw_bound(log_weights(trained_vae, x, x, k, gen)[0]) for _ in range(400 // k)]).mean()
                 for k in (1, 4, 20, 100)}
        elbo = torch.stack([trained_vae.elbo(x, gen) for _ in range(400)]).mean()  # closed-form KL
    assert abs(float(means[1] - elbo)) < 0.5, (means[1], elbo)  # the same expectation
    assert float(means[1]) < float(means[4]) < float(means[20]) < float(means[100])
    assert float(means[100] - means[1]) > 1.0  # nats: a real tightening, not noise


def test_iwae_trains_on_the_bound(mnist_test):
    torch.manual_seed(0)
    model = build(ModelConfig(objective="iwae", k=8, latent_dim=4, width=4, hidden=16))
    x = digits(mnist_test, 16)
    out = model.loss(x, generator=torch.Generator().manual_seed(1), dataset_size=100)
    assert_close(out.loss, -out.terms["iw_bound"])
    assert 1.0 <= float(out.terms["effective_samples"]) <= 8.0
    assert float(-out.loss.detach()) >= float(out.elbo.detach()) - 5.0  # the bound is no looser than a one-sample ELBO, up to noise


# -- vamp -----------------------------------------------------------------------------------------------------


def test_mixture_log_prob_matches_components_one_by_one():
    g = torch.Generator().manual_seed(0)
    means, logvars = torch.randn(7, 3, generator=g), torch.randn(7, 3, generator=g) * 0.5
    z = torch.randn(5, 11, 3, generator=g)
    per = torch.distributions.Normal(means, torch.exp(0.5 * logvars)).log_prob(z.unsqueeze(-2)).sum(-1)  # (5, 11, 7)
    assert_close(mixture_log_prob(z, means, logvars), torch.logsumexp(per, -1) - math.log(7), rtol=1e-5, atol=1e-5)


def test_vamp_prior_density_integrates_to_one_on_a_2d_grid():
    torch.manual_seed(0)
    model = build(ModelConfig(objective="vamp", latent_dim=2, pseudo_inputs=5, width=4, hidden=16)).eval()
    prior = model.prior
    assert isinstance(prior, VampPrior) and prior.pseudo.shape == (5, 1, 28, 28)
    side = torch.linspace(-12, 12, 601)
    grid = torch.stack(torch.meshgrid(side, side, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        density = prior.log_prob(grid).exp().reshape(601, 601)
        means, _ = prior.components()
    mass = torch.trapezoid(torch.trapezoid(density, side, dim=1), side)
    assert abs(float(mass) - 1.0) < 1e-3
    draws = prior.sample(4000, torch.Generator().manual_seed(0))  # samples follow the same mixture
    assert_close(draws.mean(0), means.mean(0), atol=0.1, rtol=0)


def test_vamp_kl_and_iw_bound_use_the_mixture(mnist_test):
    torch.manual_seed(0)
    model = build(ModelConfig(objective="vamp", latent_dim=4, pseudo_inputs=3, width=4, hidden=16)).eval()
    x = digits(mnist_test, 8)
    with torch.no_grad():
        post = model.encode(x)
        z = post.sample(torch.Generator().manual_seed(0))
        means, logvars = model.prior.components()
        expected = post.log_prob(z) - mixture_log_prob(z, means, logvars)
        assert_close(model.prior.kl(post, z), expected)
        log_w = log_weights(model, x, x, 3, torch.Generator().manual_seed(0))[0]
        assert torch.isfinite(log_w).all()
    # The pseudo-inputs learn: the loss's gradient reaches them.
    model.train()
    model.loss(x, generator=torch.Generator().manual_seed(0)).loss.backward()
    assert float(model.prior.pseudo.grad.abs().sum()) > 0


# -- mmd ------------------------------------------------------------------------------------------------------


def test_mmd_is_about_zero_for_one_distribution_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(500, 8, generator=g), torch.randn(500, 8, generator=g)
    same = float(mmd(a, b))
    shifted = [float(mmd(a, b + shift)) for shift in (0.25, 0.5, 1.0, 2.0)]
    assert abs(same) < 0.01
    assert shifted[0] > 5 * abs(same) and shifted == sorted(shifted)
    # Identical samples: only the U-statistic's cross-term diagonal is left, 2 (mean k_offdiag - k_diag) / n,
    # and the kernel lies in (0, len(SCALES)].
    assert -2 * len(SCALES) / 500 <= float(mmd(a, a)) <= 0.0


@pytest.mark.parametrize("objective", ["wae-mmd", "info-vae"])
def test_mmd_families_log_the_mmd_and_weigh_it(objective, mnist_test):
    x = digits(mnist_test, 32)
    losses = {}
    for w in (0.0, 100.0):
        torch.manual_seed(0)
        model = build(ModelConfig(objective=objective, mmd_weight=w, latent_dim=4, width=4, hidden=16))
        losses[w] = model.loss(x, generator=torch.Generator().manual_seed(0), dataset_size=100)
    m = float(losses[100.0].terms["mmd"].detach())
    assert m > 0
    assert_close(losses[100.0].loss - losses[0.0].loss, torch.tensor(100.0 * m), rtol=1e-4, atol=1e-3)


# -- vq-vae ---------------------------------------------------------------------------------------------------


def test_codebook_moves_to_the_mean_of_its_assignments_and_restarts_dead_entries():
    book = Codebook(4, 2)
    book.embed.copy_(torch.tensor([[0.0, 0.0], [5.0, 5.0], [100.0, 100.0], [-100.0, -100.0]]))
    book.embed_sum.copy_(book.embed)
    book.usage.fill_(1.0)
    g = torch.Generator().manual_seed(0)
    data = torch.cat([torch.randn(32, 2, generator=g) * 0.1 + 1.0, torch.randn(32, 2, generator=g) * 0.1 + 4.0])
    for _ in range(400):
        q = book.quantise(data)
        book.update(data, q.indices, g)
    # Entries 2 and 3 were never nearest: restarted among the data, where they take assignments again.
    assert float(torch.cdist(book.embed[2:], data).min(1).values.max()) < 0.5
    assert float(book.in_use()) == 1.0
    # The EMA's fixed point: every entry sits at the mean of the vectors assigned to it.
    idx = book.quantise(data).indices.reshape(-1)
    assert len(torch.unique(idx)) == 4
    for j in range(4):
        assert_close(book.embed[j], data[idx == j].mean(0), atol=0.05, rtol=0)
    book.embed[2], book.embed_sum[2], book.usage[2] = 1000.0, 0.0, 0.0  # far away and out of use: the next
    book.update(data, book.quantise(data).indices, g)  # update puts it exactly on one of the batch's vectors
    assert float(torch.cdist(book.embed[2:3], data).min()) < 1e-6 and float(book.usage[2]) > 0


def test_vq_vae_reports_codebook_use_and_quantises_codes(mnist_test):
    torch.manual_seed(0)
    model = build(ModelConfig(objective="vq-vae", latent_dim=8, code_dim=2, codebook=32, width=4, hidden=16))
    x = digits(mnist_test, 32)
    model.loss(x, generator=torch.Generator().manual_seed(0), dataset_size=100)  # a training step's codebook update
    model.eval()  # no update now: the terms describe the codebook encode() uses
    out = model.loss(x, generator=torch.Generator().manual_seed(0), dataset_size=100)
    assert 1.0 <= float(out.terms["perplexity"]) <= 32.0
    used = float(out.terms["codebook_used"])  # the share of entries this batch's 128 groups landed on
    assert 0.0 < used <= 1.0 and used * 32 == len(torch.unique(model.encode(x).indices))
    assert 0.0 < float(out.terms["codebook_in_use"]) <= 1.0
    assert_close(out.kl, torch.tensor(4 * math.log(32)))  # 4 groups, uniform over 32 entries
    with torch.no_grad():
        z = model.encode(x).mean
        entries = model.objective.codebook.embed
        assert float(torch.cdist(z.reshape(-1, 2), entries).min(1).values.max()) < 1e-3  # every group is an entry
        assert_close(model.prior.snap(z), z, atol=1e-4, rtol=0)  # codes already on the codebook stay put
        moved = model.prior.snap(torch.randn(16, 8, generator=torch.Generator().manual_seed(0)))
        assert float(torch.cdist(moved.reshape(-1, 2), entries).min(1).values.max()) < 1e-3


def test_vq_vae_latent_dim_must_split_into_groups():
    with pytest.raises(ValueError, match="latent_dim .* multiple of code_dim"):
        ModelConfig(objective="vq-vae", latent_dim=6, code_dim=4)


# -- hvae -----------------------------------------------------------------------------------------------------


def test_hierarchical_kl_is_the_sum_of_its_layer_terms(mnist_test):
    torch.manual_seed(0)
    model = build(ModelConfig(objective="hvae", latent_dim=7, layers=3, width=4, hidden=16)).eval()
    assert layer_dims(7, 3) == [3, 2, 2]
    x = digits(mnist_test, 8)
    with torch.no_grad():
        post = model.encode(x)
        assert isinstance(post, HierarchicalPosterior) and isinstance(model.prior, HierarchicalPrior)
        z = post.sample(torch.Generator().manual_seed(0))
        layers = model.prior.layer_kls(post, z)
        assert layers.shape == (3, 8)
        assert_close(model.prior.kl(post, z), layers.sum(0))
        # Each layer's term by hand: log q(z_l | z_{l-1}) - log p(z_l | z_{l+1}) with torch's Normal.
        z1, z2, z3 = z.split([3, 2, 2], -1)
        normal = lambda mean_logvar, v: torch.distributions.Normal(mean_logvar[0], torch.exp(0.5 * mean_logvar[1])).log_prob(v).sum(-1)  # noqa: E731
        chunks = lambda net, parent: net(parent).chunk(2, -1)  # noqa: E731
        up, down = model.objective.up, model.prior.down
        q = [normal(post.first, z1), normal(chunks(up[0], z1), z2), normal(chunks(up[1], z2), z3)]
        p = [normal(chunks(down[0], z2), z1), normal(chunks(down[1], z3), z2),
             torch.distributions.Normal(0.0, 1.0).log_prob(z3).sum(-1)]
        for i in range(3):
            assert_close(layers[i], q[i] - p[i], rtol=1e-4, atol=1e-4)
    out = model.loss(x, generator=torch.Generator().manual_seed(0))
    assert_close(out.kl, sum(out.terms[f"kl_layer{i}"] for i in (1, 2, 3)))


def test_free_bits_floor_each_layer(mnist_test):
    x = digits(mnist_test, 16)
    results = {}
    for floor in (0.0, 50.0):
        torch.manual_seed(0)
        model = build(ModelConfig(objective="hvae", latent_dim=4, free_bits=floor, width=4, hidden=16))
        results[floor] = model.loss(x, generator=torch.Generator().manual_seed(0))
    low = results[50.0]
    assert_close(low.kl, results[0.0].kl)  # the ELBO is untouched
    assert_close(low.loss, low.recon_nll + torch.tensor(100.0))  # both layers' KL sit under the 50-nat floor


def test_hierarchical_samples_follow_the_top_down_chain():
    prior = HierarchicalPrior([2, 2], 16)
    z = prior.sample(5000, torch.Generator().manual_seed(0))
    assert z.shape == (5000, 4)
    top = z[:, 2:]
    assert_close(top.mean(0), torch.zeros(2), atol=0.05, rtol=0)
    assert_close(top.std(0), torch.ones(2), atol=0.05, rtol=0)


# -- resume with a family's own state -------------------------------------------------------------------------


def blobs(n: int, seed: int, split: str) -> ImageSet:
    rng = np.random.default_rng(seed)
    images = np.kron(rng.random((n, 1, 4, 4)) ** 2, np.ones((1, 1, 4, 4)))
    return ImageSet(images=(images * 255).astype(np.uint8), name="blobs", split=split)


class StopAfter:
    def __init__(self, steps: int) -> None:
        self.steps, self.seen = steps, 0

    def start(self, total, description):
        pass

    def advance(self, n=1, **info):
        self.seen += n
        if self.seen == self.steps:
            raise KeyboardInterrupt

    def close(self):
        pass


@pytest.mark.parametrize("objective, extra", [("factor-vae", {}), ("vq-vae", dict(code_dim=1, codebook=8)),
                                              ("vae", dict(gan_weight=0.5, gan_start=4, gan_width=4))])
def test_resume_is_exact_with_a_discriminator_or_a_codebook(objective, extra, tmp_path, monkeypatch):
    """The cut lands after step 6 of 8: the PatchGAN adversary (from step 5) has optimiser moments to lose."""
    from latentspace.train import loop as loop_module

    monkeypatch.setattr(loop_module, "PROGRESS_EVERY_STEPS", 1)
    train, test = blobs(100, 0, "train"), blobs(40, 1, "test")
    config = TrainConfig(epochs=2, batch_size=32, lr=3e-3, warmup_steps=3, seed=3, eval_batch_size=64, probe_size=10)

    def model():
        torch.manual_seed(0)
        return build(ModelConfig(image_shape=(1, 16, 16), latent_dim=2, width=4, hidden=16, objective=objective,
                                 **extra))

    whole = model()
    fit(whole, train, test, config, tmp_path / "whole", "cpu")
    cut = model()
    with pytest.raises(KeyboardInterrupt):
        fit(cut, train, test, config, tmp_path / "cut", "cpu", progress=StopAfter(6))
    resumed = model()
    fit(resumed, train, test, config, tmp_path / "cut", "cpu", resume=True)
    reference = whole.state_dict()
    for name, value in resumed.state_dict().items():  # buffers (the codebook) too, not only parameters
        assert torch.equal(value, reference[name]), name
