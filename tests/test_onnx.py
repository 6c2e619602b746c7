"""ONNX export: onnxruntime gives torch's numbers for any batch size, onnx.json says how to feed the graphs, and
a graph that disagrees with torch is never written."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from latentspace.cli.main import app
from latentspace.models import ModelConfig, build, onnx_export, save_model
from latentspace.models.onnx_export import ONNX_EXTRA, export_onnx, run_onnx
from latentspace.train.config import TrainConfig
from latentspace.train.run import write_run_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SHAPES = {"grey": (1, 28, 28), "rgb": (3, 32, 32)}


def tiny(shape, objective="vae", seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build(ModelConfig(image_shape=shape, latent_dim=3, objective=objective, width=4, hidden=16)).eval()


def torch_outputs(model, x, z):
    with torch.inference_mode():
        posterior = model.encode(x)
        return posterior.mean.numpy(), posterior.logvar.numpy(), model.decode(z).numpy()


@pytest.mark.parametrize("kind", SHAPES)
def test_onnxruntime_matches_torch_for_batches_of_1_and_7(kind, tmp_path):
    shape = SHAPES[kind]
    model = tiny(shape)
    result = export_onnx(model, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decoder.onnx", "encoder.onnx", "onnx.json"]
    g = torch.Generator().manual_seed(1)
    for batch in (7, 1):  # neither is the batch of 2 the graphs were traced with: the dimension is dynamic
        x, z = torch.rand(batch, *shape, generator=g), torch.randn(batch, 3, generator=g)
        mean, logvar, image = torch_outputs(model, x, z)
        got_mean, got_logvar = run_onnx(result.encoder_path, {"image": x.numpy()})
        (got_image,) = run_onnx(result.decoder_path, {"z": z.numpy()})
        assert got_mean.shape == (batch, 3) and got_image.shape == (batch, *shape)
        torch.testing.assert_close(got_mean, mean, rtol=0, atol=1e-5)
        torch.testing.assert_close(got_logvar, logvar, rtol=0, atol=1e-5)
        torch.testing.assert_close(got_image, image, rtol=0, atol=1e-5)
    assert 0.0 <= result.encoder_max_abs_diff <= 1e-5 and 0.0 <= result.decoder_max_abs_diff <= 1e-5
    assert got_image.min() >= 0.0 and got_image.max() <= 1.0  # probabilities/means, not logits


def test_onnx_json_names_shapes_and_scaling(tmp_path):
    model = tiny(SHAPES["rgb"])
    export_onnx(model, tmp_path)
    meta = json.loads((tmp_path / "onnx.json").read_text())
    (image_in,) = meta["encoder"]["inputs"]
    assert image_in == {"name": "image", "shape": ["batch", 3, 32, 32], "dtype": "float32", "range": [0.0, 1.0],
                        "layout": "NCHW", "channels": "RGB"}
    assert [o["name"] for o in meta["encoder"]["outputs"]] == ["mean", "logvar"]
    assert meta["encoder"]["outputs"][0]["shape"] == ["batch", 3]
    assert meta["decoder"]["inputs"][0]["shape"] == ["batch", 3]
    assert meta["decoder"]["outputs"][0]["shape"] == ["batch", 3, 32, 32]
    assert meta["decoder"]["outputs"][0]["range"] == [0.0, 1.0]
    assert "/ 255" in meta["preprocess"] and "round(image * 255)" in meta["postprocess"]
    assert meta["model"] == model.config.to_dict() and meta["check"]["batch"] == 7


def test_ae_exports_a_point_mass_posterior(tmp_path):
    model = tiny(SHAPES["grey"], objective="ae")
    result = export_onnx(model, tmp_path)
    x = torch.rand(4, *SHAPES["grey"], generator=torch.Generator().manual_seed(2))
    mean, logvar = run_onnx(result.encoder_path, {"image": x.numpy()})
    assert np.isneginf(logvar).all()
    torch.testing.assert_close(mean, torch_outputs(model, x, torch.zeros(1, 3))[0], rtol=0, atol=1e-5)


def test_a_graph_that_disagrees_with_torch_is_refused_and_not_written(tmp_path, monkeypatch):
    real = onnx_export.run_onnx

    def off_by_a_little(graph, feeds):
        return [o + 1e-3 for o in real(graph, feeds)]

    monkeypatch.setattr(onnx_export, "run_onnx", off_by_a_little)
    with pytest.raises(ValueError, match=r"encoder.onnx: onnxruntime differs from torch by 0.001 .*not written"):
        export_onnx(tiny(SHAPES["grey"]), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_extra_is_one_line(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(ValueError) as info:
        export_onnx(tiny(SHAPES["grey"]), tmp_path)
    assert str(info.value) == ONNX_EXTRA == "ONNX export needs the onnx extra: pip install 'latentspace[onnx]'"


def test_cli_export_onnx_prints_the_check(tmp_path):
    run = tmp_path / "run"
    model = tiny(SHAPES["grey"])
    write_run_config(run, model.config, TrainConfig(), None)
    save_model(model, run)
    runner = CliRunner()
    result = runner.invoke(app, ["export", str(run), "--onnx", str(tmp_path / "onnx")])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "max abs difference: encoder" in result.output
    x = torch.rand(5, *SHAPES["grey"], generator=torch.Generator().manual_seed(3))
    (mean, _) = run_onnx(tmp_path / "onnx" / "encoder.onnx", {"image": x.numpy()})
    torch.testing.assert_close(mean, torch_outputs(model, x, torch.zeros(1, 3))[0], rtol=0, atol=1e-5)
    result = runner.invoke(app, ["export", str(run)])
    assert result.exit_code != 0 and "--onnx" in result.output
