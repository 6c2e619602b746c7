"""The encoder/decoder families, their registry, the detail terms, and config round-trips for all of them."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch.testing import assert_close

from latentspace.models import ARCHS, DETAIL_TERMS, OBJECTIVES, ModelConfig, build, load_model, save_model
from latentspace.models.detail import ffl_term, ssim_term
from latentspace.models.nets import default_arch
from latentspace.models.nets import plain
from latentspace.models.nets.resnet import ResBlock, SelfAttention, stage_plan

TINY = dict(latent_dim=3, width=4, hidden=16)


def images(n, shape, seed=0):
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 64, 64)])
def test_every_family_round_trips_and_decodes_to_the_image_shape(arch, shape, tmp_path):
    torch.manual_seed(0)
    model = build(ModelConfig(image_shape=shape, arch=arch, **TINY)).eval()
    x = images(2, shape)
    assert model.decode(model.encode(x).mean).shape == (2, *shape)
    save_model(model, tmp_path)
    loaded = load_model(tmp_path)
    assert loaded.config == model.config and loaded.config.arch == arch
    assert_close(loaded.decode(loaded.encode(x).mean), model.decode(model.encode(x).mean), rtol=0, atol=0)


def test_resnet_stages_follow_the_image_side():
    side = {s: stage_plan(ModelConfig(image_shape=(3, s, s), arch="resnet", width=8)) for s in (28, 32, 64, 128)}
    assert side[28] == ([8, 16], 7)
    assert side[32] == ([8, 16, 32], 4)
    assert side[64] == ([8, 16, 32, 32], 4)
    assert side[128] == ([8, 16, 32, 32, 32], 4)


def test_resnet_blocks_are_residual_and_attention_is_optional():
    block = ResBlock(8)
    for p in (block.conv2.weight, block.conv2.bias):
        torch.nn.init.zeros_(p)
    x = torch.randn(2, 8, 4, 4)
    assert_close(block(x), x)  # a zeroed last convolution leaves the identity
    plain = build(ModelConfig(image_shape=(3, 32, 32), arch="resnet", **TINY))
    attended = build(ModelConfig(image_shape=(3, 32, 32), arch="resnet", attention=True, **TINY))
    assert not any(isinstance(m, SelfAttention) for m in plain.modules())
    assert sum(isinstance(m, SelfAttention) for m in attended.modules()) == 2  # encoder and decoder


def test_unset_family_and_width_resolve_from_the_registry():
    for shape in ((1, 28, 28), (3, 64, 64)):
        config = ModelConfig(image_shape=shape)
        assert config.arch == default_arch(shape[1]) in ARCHS
        assert config.width == ARCHS[config.arch].default_width(shape)
    assert ModelConfig(image_shape=(3, 64, 64), arch="resnet").width == ARCHS["resnet"].default_width((3, 64, 64))
    widths = {shape: ModelConfig(image_shape=shape, arch="plain").width
              for shape in ((1, 28, 28), (3, 32, 32), (1, 64, 64), (3, 64, 64), (3, 128, 128))}
    assert widths == {(1, 28, 28): 16, (3, 32, 32): 16, (1, 64, 64): 16, (3, 64, 64): 32, (3, 128, 128): 32}


def test_plain_stages_halve_down_to_smallest_side():
    side = {s: plain.stage_plan(ModelConfig(image_shape=(3, s, s), arch="plain", width=8)) for s in (28, 32, 64, 128)}
    assert side == {28: ([8, 16], 7), 32: ([8, 16, 32], 4), 64: ([8, 16, 32, 64], 4), 128: ([8, 16, 32, 64, 64], 4)}
    wide = {s: plain.stage_plan(ModelConfig(image_shape=(3, s, s), arch="plain", width=8, smallest_side=16))
            for s in (32, 64)}
    assert wide == {32: ([8], 16), 64: ([8, 16], 16)}
    model = build(ModelConfig(image_shape=(3, 64, 64), arch="plain", smallest_side=16, **TINY))
    assert model.decode(model.encode(images(2, (3, 64, 64))).mean).shape == (2, 3, 64, 64)


def test_runs_written_before_smallest_side_load_with_the_plan_their_weights_have(tmp_path, monkeypatch):
    for arch in ARCHS:
        legacy = ARCHS[arch].legacy_smallest
        save_model(build(ModelConfig(image_shape=(3, 64, 64), arch=arch, smallest_side=legacy, **TINY)), tmp_path)
        config = json.loads((tmp_path / "config.json").read_text())
        del config["model"]["smallest_side"]
        (tmp_path / "config.json").write_text(json.dumps(config))
        # a later default must not change the shape that an old run's weights are read into
        monkeypatch.setitem(ARCHS, arch, dataclasses.replace(ARCHS[arch], default_smallest=16))
        assert ModelConfig(image_shape=(3, 64, 64), arch=arch).smallest_side == 16
        assert load_model(tmp_path).config.smallest_side == legacy


def test_runs_written_before_the_arch_field_load_as_plain(tmp_path):
    model = build(ModelConfig(image_shape=(3, 64, 64), arch="plain", **TINY))
    save_model(model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    for field in ("arch", "attention", "ssim_weight", "ffl_weight"):
        del config["model"][field]
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert load_model(tmp_path).config.arch == "plain"


@pytest.mark.parametrize(
    "kwargs, field",
    [(dict(arch="unet"), "arch"), (dict(attention=True, arch="plain"), "attention"), (dict(ssim_weight=-1.0), "ssim"),
     (dict(ffl_weight=float("nan")), "ffl_weight"), (dict(attention=1), "attention"), (dict(width=0), "width"),
     (dict(smallest_side=28), "smallest_side"), (dict(smallest_side=7.0), "smallest_side")],
)
def test_new_fields_are_validated_by_name(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ModelConfig(**kwargs)


def test_every_objective_is_registered_with_help_and_a_matching_name():
    assert set(OBJECTIVES) >= {"ae", "vae", "beta-vae", "beta-tcvae"}
    for name, cls in OBJECTIVES.items():
        assert cls.name == name and cls.help and "\n" not in cls.help
        assert set(cls.options) <= set(ModelConfig.__dataclass_fields__)
    assert not OBJECTIVES["ae"].variational and OBJECTIVES["vae"].variational


def test_beta_scales_the_kl_of_beta_vae_only():
    x = images(4, (1, 28, 28))
    losses = {}
    for objective, beta in (("vae", 4.0), ("beta-vae", 1.0), ("beta-vae", 3.0)):
        torch.manual_seed(0)
        model = build(ModelConfig(objective=objective, beta=beta, **TINY))
        out = model.loss(x, generator=torch.Generator().manual_seed(0))
        losses[(objective, beta)] = (out.loss, out.recon_nll, out.kl)
    vae, b1, b3 = losses[("vae", 4.0)], losses[("beta-vae", 1.0)], losses[("beta-vae", 3.0)]
    assert_close(vae[0], b1[0])  # beta 1 is the ELBO; vae ignores --beta
    assert_close(b3[0], b3[1] + 3.0 * b3[2])


def test_ssim_term_known_answers():
    x = images(3, (3, 32, 32))
    assert float(ssim_term(x, x)) == pytest.approx(0.0, abs=1e-6)
    blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)
    noisy = images(3, (3, 32, 32), seed=1)
    assert 0.0 < float(ssim_term(blurred, x)) < float(ssim_term(noisy, x)) <= 1.5
    assert float(ssim_term(images(2, (1, 16, 16)), images(2, (1, 16, 16), seed=2))) > 0  # window cut to 15 px


def test_ffl_term_is_zero_for_identical_images_and_grows_with_lost_detail():
    x = images(3, (3, 32, 32))
    blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)
    assert float(ffl_term(x, x)) == pytest.approx(0.0, abs=1e-8)
    assert float(ffl_term(blurred, x)) > 0


@pytest.mark.parametrize("term", DETAIL_TERMS)
def test_detail_terms_join_the_loss_but_not_the_elbo(term):
    x = images(4, (3, 32, 32))
    outs = {}
    for weight in (0.0, 1.0):
        torch.manual_seed(0)
        model = build(ModelConfig(image_shape=(3, 32, 32), **TINY, **{f"{term}_weight": weight}))
        outs[weight] = model.loss(x, generator=torch.Generator().manual_seed(0))
    off, on = outs[0.0], outs[1.0]
    assert f"detail_{term}" not in off.terms
    assert_close(on.elbo, off.elbo)
    assert_close(on.loss, off.loss + on.terms[f"detail_{term}"])
    assert float(on.terms[f"detail_{term}"].detach()) > 0


def test_cli_trains_each_family_with_a_detail_term_and_help_lists_the_registries(tmp_path):
    from typer.testing import CliRunner

    from latentspace.cli.main import app
    from latentspace.train import open_run

    runner = CliRunner()
    help_text = runner.invoke(app, ["train", "--help"], terminal_width=200).output
    for name in (*OBJECTIVES, *ARCHS):
        assert name in help_text
    for arch in ARCHS:
        out = tmp_path / arch
        result = runner.invoke(app, ["train", "--data", "faces", "--n", "64", "--size", "32", "--latent-dim", "2",
                                     "--arch", arch, "--width", "4", "--hidden", "16", "--ssim", "0.5",
                                     "--smallest-side", "8", "--epochs", "1", "--out", str(out), "--threads", "1"])
        assert result.exit_code == 0, result.output
        config = open_run(out).model_config
        assert (config.arch, config.width, config.ssim_weight, config.smallest_side) == (arch, 4, 0.5, 8)
        (record,) = open_run(out).metrics()
        assert record["test_detail_ssim"] > 0  # logged, and part of the loss, not the ELBO
        assert record["test_loss"] == pytest.approx(-record["test_elbo"] + record["test_detail_ssim"], rel=1e-4)
    bad = runner.invoke(app, ["train", "--data", "faces", "--arch", "unet", "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "--arch unet: expected one of plain, resnet" in str(bad.exception)
    assert not (tmp_path / "x").exists()


def test_detail_terms_stay_fp32_under_bf16_autocast():
    x = images(4, (3, 32, 32))
    blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)
    from latentspace.models.detail import detail_loss

    exact = detail_loss({"ssim": 1.0, "ffl": 1.0}, blurred, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = detail_loss({"ssim": 1.0, "ffl": 1.0}, blurred, x)
    for name in exact:
        assert under[name].dtype == torch.float32
        assert_close(under[name], exact[name])
