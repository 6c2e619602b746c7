"""Training precision (issue 13, time to quality): bf16 autocast where the device runs bf16 natively, fp32 elsewhere
or when asked; the model's outputs, the objective and the weights stay fp32 either way."""
from __future__ import annotations

import pytest
import torch

from latentspace.data import load
from latentspace.models import ModelConfig, build
from latentspace.train import TrainConfig, fit, open_run
from latentspace.train.step import make_optimizer, train_step
from latentspace.utils import device as devices
from latentspace.utils.device import train_autocast_dtype

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CPU = torch.device("cpu")


@pytest.mark.parametrize("native", [True, False])
def test_auto_takes_bf16_only_where_the_cpu_runs_it_natively(monkeypatch, native):
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: native)
    assert train_autocast_dtype(CPU, "auto") == (torch.bfloat16 if native else None)
    assert train_autocast_dtype(CPU, "fp32") is None
    assert train_autocast_dtype(CPU, "bf16") == torch.bfloat16  # asked for: honoured, even if emulated
    assert train_autocast_dtype(torch.device("cuda"), "auto") == torch.bfloat16
    assert devices.autocast_dtype(CPU) is None  # evaluation on CPUs stays fp32, whatever the CPU


def test_a_precision_outside_the_three_is_refused():
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16, got 'fp16'"):
        TrainConfig(precision="fp16")
    with pytest.raises(ValueError, match="precision must be one of"):
        train_autocast_dtype(CPU, "half")


def test_under_bf16_autocast_the_model_hands_fp32_to_the_objective():
    torch.manual_seed(0)
    model = build(ModelConfig(image_shape=(1, 16, 16), latent_dim=3, width=4, hidden=16))
    x = torch.rand(8, 1, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        posterior = model.encode(x)
        params = model.decode_params(posterior.mean)
        inner = model.decoder(posterior.mean)
        out = model.loss(x)
    assert inner.dtype == torch.bfloat16  # autocast is on inside the network...
    assert posterior.mean.dtype == posterior.logvar.dtype == params.dtype == torch.float32  # ...not at its edges
    assert out.loss.dtype == torch.float32
    with torch.no_grad():
        full = model.loss(x, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        half = model.loss(x, generator=torch.Generator().manual_seed(1))
    # bf16 keeps 8 bits of mantissa: the network's rounding moves the loss a little, never by whole nats per pixel
    assert abs(half.recon_nll.item() - full.recon_nll.item()) < 0.02 * full.recon_nll.item()


def test_bf16_training_steps_differ_from_fp32_and_keep_fp32_weights():
    def one_step(amp):
        torch.manual_seed(0)
        model = build(ModelConfig(image_shape=(1, 16, 16), latent_dim=3, width=4, hidden=16))
        opt = make_optimizer(model, 1e-2, 0.0, CPU)
        x = torch.rand(16, 1, 16, 16, generator=torch.Generator().manual_seed(2))
        train_step(model, opt, x, generator=torch.Generator().manual_seed(3), amp_dtype=amp)
        return model.state_dict()

    full, half = one_step(None), one_step(torch.bfloat16)
    assert all(v.dtype == torch.float32 for v in half.values())
    assert any(not torch.equal(full[k], half[k]) for k in full)  # autocast really changed the arithmetic
    assert one_step(torch.bfloat16).keys() == half.keys()
    assert all(torch.equal(v, one_step(torch.bfloat16)[k]) for k, v in half.items())  # and is deterministic


def test_precision_round_trips_and_a_resume_cannot_change_it(tmp_path):
    train, test = load("shapes", split="train", n=64, size=16), load("shapes", split="test", n=32, size=16)
    config = TrainConfig(epochs=1, batch_size=32, probe_size=0, precision="fp32")
    torch.manual_seed(0)
    fit(build(ModelConfig(image_shape=train.shape, latent_dim=2)), train, test, config, tmp_path, "cpu")
    assert open_run(tmp_path).train_config.precision == "fp32"
    with pytest.raises(ValueError, match=r"precision='bf16' \(run has 'fp32'\)"):
        fit(build(ModelConfig(image_shape=train.shape, latent_dim=2)), train, test,
            config.with_changes(precision="bf16", epochs=2), tmp_path, "cpu", resume=True)


def test_a_config_written_before_precision_existed_reads_as_auto():
    old = TrainConfig().to_dict()
    del old["precision"]
    assert TrainConfig.from_dict(old).precision == "auto"
