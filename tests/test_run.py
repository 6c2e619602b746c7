"""The run folder: what fit writes is enough to reload the model, the data, the metrics and the snapshots."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import latentspace
from latentspace.data import ImageSet, load, to_float
from latentspace.models import ModelConfig, build
from latentspace.train import TrainConfig, fit, load_trainer_state, open_run
from latentspace.train.checkpoint import save_trainer_state
from latentspace.train.loop import posterior_means, probe_index

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("LATENTSPACE_DATA", REPO.parent / "shared" / "data"))
HAVE_MNIST = (DATA_DIR / "mnist" / "train-images-idx3-ubyte.gz").exists()
CONFIG = TrainConfig(epochs=2, batch_size=50, warmup_steps=2, seed=1, eval_batch_size=100, probe_size=30)


def blobs(n: int, seed: int, split: str) -> ImageSet:
    rng = np.random.default_rng(seed)
    images = np.kron(rng.random((n, 1, 4, 4)), np.ones((1, 1, 4, 4)))
    return ImageSet(images=(images * 255).astype(np.uint8), name="blobs", labels=rng.integers(0, 5, n), split=split)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    train, test = blobs(200, 0, "train"), blobs(60, 1, "test")
    torch.manual_seed(0)
    model = build(ModelConfig(image_shape=(1, 16, 16), latent_dim=3, width=4, hidden=16))
    initial = build(model.config)
    initial.load_state_dict(model.state_dict())
    fit(model, train, test, CONFIG, run_dir, "cpu", data_info={"name": "blobs", "seed": 7})
    return model, initial, test, run_dir


def test_run_folder_holds_every_file(trained):
    *_, run_dir = trained
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "config.json", "metrics.jsonl", "model.safetensors", "snapshots.safetensors", "trainer_state.safetensors"]
    config = json.loads((run_dir / "config.json").read_text())
    assert sorted(config) == ["data", "latentspace_version", "model", "train"]
    assert config["train"] == CONFIG.to_dict()
    assert config["data"]["name"] == "blobs" and config["data"]["seed"] == 7
    assert config["latentspace_version"] == latentspace.__version__


def test_reloaded_model_encodes_exactly_like_the_trained_one(trained):
    model, _, test, run_dir = trained
    run = open_run(run_dir)
    assert run.model_config == model.config and run.train_config == CONFIG
    reloaded = run.model()
    assert not reloaded.training
    x = to_float(test.images)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded.encode(x).mean, model.encode(x).mean, rtol=0, atol=0)
        torch.testing.assert_close(reloaded.decode(model.encode(x).mean), model.decode(model.encode(x).mean),
                                   rtol=0, atol=0)
    top = latentspace.load(run_dir)
    torch.testing.assert_close(top.state_dict(), reloaded.state_dict(), rtol=0, atol=0)


def test_snapshots_are_probe_codes_before_and_after_training(trained):
    model, initial, test, run_dir = trained
    snaps = open_run(run_dir).snapshots()
    probe = probe_index(len(test), CONFIG.probe_size, CONFIG.seed)
    np.testing.assert_array_equal(snaps["probe_index"], probe)
    np.testing.assert_array_equal(snaps["probe_labels"], test.labels[probe])
    assert sorted(k for k in snaps if k.startswith("epoch_")) == ["epoch_0000", "epoch_0001", "epoch_0002"]
    images = torch.from_numpy(test.images[probe])
    # another batch size may pick other kernels: equal to float32 rounding, not bit for bit
    np.testing.assert_allclose(snaps["epoch_0000"], posterior_means(initial, images, 7), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(snaps["epoch_0002"], posterior_means(model, images, 7), rtol=1e-5, atol=1e-6)
    assert snaps["epoch_0002"].dtype == np.float32 and snaps["epoch_0002"].shape == (30, 3)
    assert not np.allclose(snaps["epoch_0001"], snaps["epoch_0002"])


def test_metrics_have_one_record_per_epoch(trained):
    *_, run_dir = trained
    records = open_run(run_dir).metrics()
    assert [(r["epoch"], r["step"]) for r in records] == [(1, 4), (2, 8)]
    for r in records:
        assert np.isfinite(list(r.values())).all()
        assert r["test_elbo"] == pytest.approx(-(r["test_recon_nll"] + r["test_kl"]))


def test_open_run_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="no such run folder"):
        open_run(tmp_path / "missing")
    with pytest.raises(ValueError, match=r"not a run folder \(no config.json\)"):
        open_run(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model": ModelConfig().to_dict()}))
    with pytest.raises(ValueError, match="missing 'train'"):
        open_run(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model": ModelConfig().to_dict(), "train": {"epochs": 0}}))
    with pytest.raises(ValueError, match=r"invalid config .*epochs"):
        open_run(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        open_run(tmp_path)


@pytest.mark.parametrize("damage", ["truncate", "header", "empty"])
def test_damaged_trainer_state_is_a_one_line_error_naming_the_file(trained, tmp_path, damage):
    *_, run_dir = trained
    data = (run_dir / "trainer_state.safetensors").read_bytes()
    bad = {"truncate": data[: len(data) // 2], "header": data[:8] + b"#" * 40 + data[48:], "empty": b""}[damage]
    path = tmp_path / "trainer_state.safetensors"
    path.write_bytes(bad)
    with pytest.raises(ValueError) as info:
        load_trainer_state(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_resume_from_a_damaged_checkpoint_fails_clearly(trained, tmp_path):
    model, _, test, run_dir = trained
    for name in ("config.json", "metrics.jsonl", "model.safetensors", "snapshots.safetensors"):
        (tmp_path / name).write_bytes((run_dir / name).read_bytes())
    (tmp_path / "trainer_state.safetensors").write_bytes((run_dir / "trainer_state.safetensors").read_bytes()[:1000])
    with pytest.raises(ValueError, match="trainer_state.safetensors: not a readable safetensors file"):
        fit(build(model.config), blobs(200, 0, "train"), test, CONFIG.with_changes(epochs=3), tmp_path, "cpu",
            resume=True)


def test_trainer_state_round_trips_optimizer_rng_and_position(tmp_path):
    params = [torch.nn.Parameter(torch.randn(3, 2)), torch.nn.Parameter(torch.randn(4))]
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.8, 0.9))
    (params[0].square().sum() + params[1].sum()).backward()
    opt.step()
    g = torch.Generator().manual_seed(11)
    path = save_trainer_state(tmp_path / "ts.safetensors", opt, scheduler_step=9, epoch=2, step_in_epoch=3,
                              global_step=9, generator_states={"reparam": g.get_state()}, extra={"a": [0.1, 2]},
                              model_state={"w": params[0]})
    fresh = [torch.nn.Parameter(torch.zeros(3, 2)), torch.nn.Parameter(torch.zeros(4))]
    opt2 = torch.optim.AdamW(fresh, lr=5.0)
    state = load_trainer_state(path, opt2)
    assert (state.epoch, state.step_in_epoch, state.global_step, state.scheduler_step) == (2, 3, 9, 9)
    assert state.extra == {"a": [0.1, 2]}
    torch.testing.assert_close(state.model_state["w"], params[0].detach())
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for i in a["state"]:
        for k in a["state"][i]:
            torch.testing.assert_close(b["state"][i][k], a["state"][i][k], rtol=0, atol=0)
    g2 = torch.Generator().set_state(state.generator_states["reparam"])
    assert torch.equal(torch.randn(5, generator=g2), torch.randn(5, generator=g))
    with pytest.raises(ValueError, match="optimiser state does not fit"):
        load_trainer_state(path, torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))]))


@pytest.mark.skipif(not HAVE_MNIST, reason=f"real MNIST not found under {DATA_DIR} (set LATENTSPACE_DATA)")
def test_run_reloads_its_dataset_from_the_config(tmp_path):
    train = load("mnist", split="train", data_dir=DATA_DIR, n=100)
    test = load("mnist", split="test", data_dir=DATA_DIR, n=100)
    info = {"name": "mnist", "data_dir": str(DATA_DIR), "n": 100}
    fit(build(ModelConfig(latent_dim=2, width=4, hidden=16)), train, test,
        TrainConfig(epochs=1, batch_size=100, probe_size=5), tmp_path, "cpu", data_info=info)
    again = open_run(tmp_path).dataset("test")
    np.testing.assert_array_equal(again.images, test.images)
    np.testing.assert_array_equal(again.labels, test.labels)
