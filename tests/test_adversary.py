"""The PatchGAN adversary (models.adversary): its parts' known answers, its place in the loss (training only,
after its start step, never in the ELBO), config round-trips, the CLI's flags, and a discriminator that learns."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from latentspace.models import ModelConfig, build, load_model, save_model
from latentspace.models.adversary import (
    GAN_BETAS, PatchDiscriminator, _cutout, _translate, adaptive_weight, diff_augment, last_weight,
)  # fmt: skip
from latentspace.train.step import make_optimizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = dict(latent_dim=3, width=4, hidden=16)


def images(n, shape, seed=0):
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("side, patches", [(16, 6), (28, 12), (32, 6), (64, 6)])
def test_the_discriminator_gives_a_map_of_patch_logits(side, patches):
    d = PatchDiscriminator(3, side, 8)
    assert d(images(2, (3, side, side))).shape == (2, 1, patches, patches)


def test_adaptive_weight_matches_the_gradient_norms_at_the_last_layer():
    last = torch.randn(5, 4, requires_grad=True)
    loss, gan = 3.0 * last.sum(), (last**2).sum()
    expected = 3.0 * 20**0.5 / (2 * last.detach()).norm()
    assert float(adaptive_weight(loss, gan, last)) == pytest.approx(float(expected), rel=1e-4)
    flat = last.sum() * 0.0  # a generator term with no gradient: the weight stops at its ceiling
    assert float(adaptive_weight(loss, flat, last)) == 1e4


def test_translation_and_cutout_move_and_blank_known_areas():
    ones = torch.ones(6, 1, 16, 16)
    gen = torch.Generator().manual_seed(0)
    cut = _cutout(ones, gen)
    assert ((cut == 0).sum(dim=(1, 2, 3)) == 8 * 8).all()  # a half-side square, inside the image
    moved = _translate(ones, torch.Generator().manual_seed(1))
    kept = moved.sum(dim=(1, 2, 3))
    assert (kept >= 14 * 14).all() and (kept <= 16 * 16).all() and kept.unique().numel() > 1  # shifts of <= 2 px
    ramp = torch.arange(16.0).expand(1, 1, 16, 16).contiguous()
    shifted = _translate(ramp, torch.Generator().manual_seed(2))
    inner = shifted[0, 0, 4:12, 4:12]
    assert (inner.diff(dim=1) == 1).all()  # a whole-pixel shift: neighbours stay neighbours


def test_diff_augment_is_differentiable_and_reproducible():
    x = images(4, (3, 16, 16)).requires_grad_()
    a = diff_augment(x, torch.Generator().manual_seed(3))
    b = diff_augment(x, torch.Generator().manual_seed(3))
    assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, diff_augment(x, torch.Generator().manual_seed(4)))
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_the_adversary_joins_training_after_its_start_and_never_the_elbo():
    torch.manual_seed(0)
    config = ModelConfig(image_shape=(1, 16, 16), gan_weight=0.5, gan_start=2, **TINY)
    model = build(config).train()
    x, gen = images(8, (1, 16, 16)), torch.Generator().manual_seed(0)
    first = [model.loss(x, generator=gen, dataset_size=100) for _ in range(2)]
    assert all("gan_generator" not in out.terms and float(out.aux) == 0.0 for out in first)
    third = model.loss(x, generator=gen, dataset_size=100)
    assert float(third.aux.detach()) > 0 and third.terms["gan_weight"] > 0  # the hinge loss and the adaptive weight
    assert float(third.loss) == pytest.approx(float(-third.elbo + third.terms["gan_generator"]), rel=1e-5)
    model.eval()
    plain = build(ModelConfig(image_shape=(1, 16, 16), **TINY))
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("adversary.")})
    plain.eval()
    scored = model.loss(x, generator=torch.Generator().manual_seed(5))
    assert scored.aux is None and not any(k.startswith("gan_") for k in scored.terms)
    assert_close(scored.loss, plain.loss(x, generator=torch.Generator().manual_seed(5)).loss)
    assert int(model.adversary.steps) == 3  # evaluation does not count as a training step


def test_gan_settings_round_trip_and_are_validated(tmp_path):
    torch.manual_seed(0)
    model = build(ModelConfig(image_shape=(3, 32, 32), gan_weight=0.3, gan_start=7, gan_width=8, **TINY))
    save_model(model, tmp_path)
    loaded = load_model(tmp_path)
    assert (loaded.config.gan_weight, loaded.config.gan_start, loaded.config.gan_width) == (0.3, 7, 8)
    for name, value in model.adversary.state_dict().items():
        assert torch.equal(loaded.adversary.state_dict()[name], value), name
    assert build(ModelConfig(**TINY)).adversary is None  # off by default: no discriminator, no cost
    for kwargs, field in [(dict(gan_weight=-1.0), "gan_weight"), (dict(gan_start=-1), "gan_start"),
                          (dict(gan_width=0), "gan_width"), (dict(gan_start=1.5), "gan_start")]:
        with pytest.raises(ValueError, match=field):
            ModelConfig(**kwargs)


def test_the_discriminator_has_an_optimiser_group_of_its_own():
    model = build(ModelConfig(image_shape=(1, 16, 16), gan_weight=0.5, **TINY))
    groups = make_optimizer(model, 1e-3, 1e-4, torch.device("cpu")).param_groups
    assert len(groups) == 2 and tuple(groups[1]["betas"]) == GAN_BETAS and groups[1]["weight_decay"] == 0.0
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in model.adversary.parameters()}
    assert last_weight(model.decoder) is list(model.decoder.parameters())[-2]  # the last conv's weight, not bias


def test_the_discriminator_learns_to_tell_sharp_from_blurred():
    torch.manual_seed(0)
    model = build(ModelConfig(image_shape=(1, 16, 16), gan_weight=0.5, gan_start=0, **TINY)).train()
    opt = make_optimizer(model, 3e-3, 0.0, torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    real = (images(32, (1, 16, 16)) > 0.5).float()  # sharp speckle
    blurred = F.avg_pool2d(real, 3, 1, 1)
    shares = []
    for _ in range(60):
        opt.zero_grad()
        mean = blurred.clone().requires_grad_()
        loss = (mean - real).pow(2).sum()
        _, hinge, logged = model.adversary.terms(mean, real, loss, mean, gen, dataset_size=10_000)
        hinge.backward()
        opt.step()
        shares.append(float(logged["gan_real_share"]))
    assert shares[0] < 0.75 and min(shares[-5:]) > 0.95


def test_cli_gan_flags(tmp_path):
    from typer.testing import CliRunner

    from latentspace.cli.main import app
    from latentspace.train import open_run

    runner = CliRunner()
    base = ["train", "--data", "faces", "--n", "64", "--size", "32", "--latent-dim", "2", "--width", "4",
            "--hidden", "16", "--epochs", "1", "--threads", "1"]
    refused = runner.invoke(app, [*base, "--gan-start", "5", "--out", str(tmp_path / "x")])
    assert refused.exit_code != 0 and "--gan-start sets up the adversary: give --gan" in str(refused.exception)
    assert not (tmp_path / "x").exists()
    result = runner.invoke(app, [*base, "--gan", "0.2", "--gan-start", "3", "--gan-width", "8",
                                 "--out", str(tmp_path / "gan")])
    assert result.exit_code == 0, result.output
    run = open_run(tmp_path / "gan")
    assert (run.model_config.gan_weight, run.model_config.gan_start, run.model_config.gan_width) == (0.2, 3, 8)
    (record,) = run.metrics()
    assert record["test_loss"] == pytest.approx(-record["test_elbo"], rel=1e-4)  # evaluation: the ELBO alone
    assert int(load_model(tmp_path / "gan").adversary.steps) == record["step"]
