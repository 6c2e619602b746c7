"""The training loop's parts: config validation, schedules, train_step, evaluate, stopping on divergence, and
learning on real MNIST."""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from latentspace.cli.main import app
from latentspace.data import ImageSet, load, to_float
from latentspace.models import LossOutput, ModelConfig, build
from latentspace.train import (
    TrainConfig, evaluate, fit, kl_weight_at, load_trainer_state, lr_at, open_run, train_step,
)
from latentspace.train import loop as loop_module
from latentspace.train.distributed import World
from latentspace.train.ledger import StepLog, TrainingDiverged, weights_problem
from latentspace.train.loop import epoch_permutation, probe_index
from latentspace.train.run import MODEL, TRAINER_STATE
from latentspace.train.step import StepOutput

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("LATENTSPACE_DATA", REPO.parent / "shared" / "data"))
HAVE_MNIST = (DATA_DIR / "mnist" / "train-images-idx3-ubyte.gz").exists()


def tiny_model(seed: int = 0, **kw):
    torch.manual_seed(seed)
    return build(ModelConfig(image_shape=(1, 16, 16), latent_dim=2, width=4, hidden=16, **kw))


def noise_images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 1, 16, 16), dtype=np.uint8)


# -- config -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [("epochs", 0), ("batch_size", 1.5), ("lr", 0.0), ("lr", float("nan")), ("weight_decay", -1.0),
     ("grad_clip", float("inf")), ("probe_size", -1), ("threads", 0), ("compile", "yes"), ("seed", True)],
)
def test_config_rejects_bad_values_naming_field_and_value(field, value):
    with pytest.raises(ValueError, match=rf"TrainConfig\.{field} must be .*got {value!r}"):
        TrainConfig(**{field: value})


def test_config_round_trips_and_rejects_unknown_keys():
    cfg = TrainConfig(epochs=3, lr=1e-3, kl_warmup_epochs=0.5, threads=2)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="no field.*epoch\\b"):
        TrainConfig.from_dict({"epoch": 3})


# -- schedules --------------------------------------------------------------------------------------


def test_lr_warms_up_linearly_then_decays_by_cosine_to_five_percent():
    cfg = TrainConfig(lr=1.0, warmup_steps=10)
    total = 110
    assert [lr_at(s, total, cfg) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert lr_at(10, total, cfg) == pytest.approx(1.0)
    assert lr_at(60, total, cfg) == pytest.approx(0.05 + 0.95 * 0.5)  # half-way: cos(pi/2) = 0
    assert lr_at(110, total, cfg) == pytest.approx(0.05)
    assert lr_at(500, total, cfg) == pytest.approx(0.05)  # stays at the floor
    decay = [lr_at(s, total, cfg) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(decay, decay[1:]))


def test_lr_without_warmup_starts_at_peak():
    cfg = TrainConfig(lr=2e-3, warmup_steps=0)
    assert lr_at(0, 100, cfg) == pytest.approx(2e-3)
    assert lr_at(100, 100, cfg) == pytest.approx(1e-4)


def test_kl_weight_rises_linearly_over_the_warmup_epochs():
    cfg = TrainConfig(kl_warmup_epochs=2.0)
    assert [kl_weight_at(s, 50, cfg) for s in (0, 25, 50, 100, 1000)] == pytest.approx([0.0, 0.25, 0.5, 1.0, 1.0])
    assert kl_weight_at(0, 50, TrainConfig(kl_warmup_epochs=0.0)) == 1.0


def test_epoch_order_is_a_seeded_permutation_fixed_by_seed_and_epoch():
    a = epoch_permutation(100, seed=1, epoch=3)
    assert sorted(a.tolist()) == list(range(100))
    assert torch.equal(a, epoch_permutation(100, seed=1, epoch=3))
    assert not torch.equal(a, epoch_permutation(100, seed=1, epoch=4))
    assert not torch.equal(a, epoch_permutation(100, seed=2, epoch=3))


def test_probe_index_is_sorted_unique_and_capped_by_the_test_set():
    idx = probe_index(1000, 50, seed=0)
    assert idx.dtype == np.int64 and len(np.unique(idx)) == 50 and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(idx, probe_index(1000, 50, seed=0))
    np.testing.assert_array_equal(probe_index(7, 50, seed=0), np.arange(7))


# -- step and evaluation ----------------------------------------------------------------------------


def test_train_step_changes_every_trainable_tensor_and_clips_the_gradient():
    model = tiny_model()
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    x = to_float(noise_images(8))
    out = train_step(model, opt, x, generator=torch.Generator().manual_seed(0), grad_clip=1e-3)
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    assert norm.item() == pytest.approx(1e-3, rel=1e-4)
    # the reported norm is the one before clipping: the same step unclipped reports (and applies) it too
    unclipped = tiny_model()
    plain = train_step(unclipped, torch.optim.SGD(unclipped.parameters(), lr=1.0), x,
                       generator=torch.Generator().manual_seed(0))
    assert out.grad_norm.item() == pytest.approx(plain.grad_norm.item(), rel=1e-6) and out.grad_norm.item() > 1e-2
    assert out.losses.loss.item() == plain.losses.loss.item()
    for k, v in model.named_parameters():
        assert not torch.equal(v, before[k]), k
    # SGD with lr 1: the total change is exactly the clipped gradient
    moved = torch.linalg.vector_norm(torch.cat([(v - before[k]).flatten() for k, v in model.named_parameters()]))
    assert moved.item() == pytest.approx(1e-3, rel=1e-3)


def test_evaluate_leaves_weights_and_training_flag_alone_and_is_seeded():
    model = tiny_model(objective="beta-tcvae")
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images = noise_images(50)
    a = evaluate(model, images, batch_size=16, generator=torch.Generator().manual_seed(5))
    b = evaluate(model, torch.from_numpy(images), batch_size=50, generator=torch.Generator().manual_seed(5))
    assert model.training and all(m.training for m in model.modules())
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    assert a.n == 50 and sorted(a.terms) == ["dwkl", "kl_estimate", "mi", "tc"]
    assert a.elbo == pytest.approx(-(a.recon_nll + a.kl), rel=1e-6)
    # the same noise in other batch sizes gives other samples, so only the deterministic part must agree
    x = to_float(images)
    with torch.no_grad():
        model.eval()
        kl = model.encode(x).kl().mean().item()
    assert a.kl == pytest.approx(kl, rel=1e-5) and b.kl == pytest.approx(kl, rel=1e-5)
    c = evaluate(model, images, batch_size=16, generator=torch.Generator().manual_seed(5))
    assert (c.loss, c.recon_nll) == (a.loss, a.recon_nll)


def test_evaluate_weights_batches_by_their_size():
    """A last batch of one image counts as one image, not as a whole batch."""
    model = tiny_model(objective="ae")  # deterministic: no sampling noise
    images = noise_images(9)
    whole = evaluate(model, images, batch_size=9)
    ragged = evaluate(model, images, batch_size=4)  # 4 + 4 + 1
    assert ragged.recon_nll == pytest.approx(whole.recon_nll, rel=1e-6)
    model.eval()
    with torch.no_grad():
        per_image = model.recon_nll(model.decode_params(model.encode(to_float(images)).mean), to_float(images))
    assert whole.recon_nll == pytest.approx(per_image.mean().item(), rel=1e-6)


def test_loss_scale_scales_the_gradient_not_the_reported_loss():
    x = to_float(noise_images(8))
    outs = []
    for scale in (1.0, 0.25):
        model = tiny_model(objective="ae")
        outs.append(train_step(model, torch.optim.SGD(model.parameters(), lr=0.0), x, loss_scale=scale))
    assert outs[1].losses.loss.item() == outs[0].losses.loss.item()
    assert outs[1].grad_norm.item() == pytest.approx(0.25 * outs[0].grad_norm.item(), rel=1e-5)


# -- divergence -------------------------------------------------------------------------------------


def step_out(loss: float, norm: float = 1.0) -> StepOutput:
    t = torch.tensor(loss)
    return StepOutput(LossOutput(loss=t, recon_nll=t, kl=torch.tensor(0.0), elbo=-t), torch.tensor(norm))


def test_a_sync_names_the_first_bad_step_and_what_went_wrong():
    log = StepLog([[5.0, -5.0, 8]], World(), torch.device("cpu"))
    log.add(2, step_out(4.0), 8)
    log.add(3, step_out(3.0, norm=float("inf")), 8)
    log.add(4, step_out(float("nan")), 8)
    health = log.sync()
    assert (health.bad_step, health.problem, health.interrupted) == (3, "gradient norm is inf", False)
    assert log.values()[:3] == [[5.0, -5.0, 8], [4.0, -4.0, 8], [3.0, -3.0, 8]]
    assert log.sync().bad_step is None and len(log.values()) == 4  # read once: nothing pending now
    log.add(5, step_out(float("inf"), norm=float("nan")), 8)
    assert log.sync().problem == "loss is inf"  # the loss is named before the gradient


def test_weights_problem_names_the_first_non_finite_tensor():
    model = tiny_model()
    assert weights_problem(model) is None
    name, param = list(model.named_parameters())[2]
    with torch.no_grad():
        param.view(-1)[0] = float("nan")
    assert weights_problem(model) == f"weight {name} is not finite"


def noise_set(n: int, seed: int, split: str) -> ImageSet:
    return ImageSet(images=noise_images(n, seed), name="noise", split=split)


def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint_byte_for_byte(tmp_path, monkeypatch):
    """Like --lr 1e9, but from the second epoch on: the first epoch writes a good checkpoint to keep."""
    monkeypatch.setattr(loop_module, "lr_at", lambda step, total, config: 1e9 if step >= 4 else 1e-3)
    written = []
    real_write = loop_module.write_checkpoint

    def write_and_remember(run_dir, *args, **kwargs):
        real_write(run_dir, *args, **kwargs)
        written.append({name: (run_dir / name).read_bytes() for name in (MODEL, TRAINER_STATE)})

    monkeypatch.setattr(loop_module, "write_checkpoint", write_and_remember)
    config = TrainConfig(epochs=3, batch_size=16, warmup_steps=0, eval_batch_size=32, probe_size=4)
    with pytest.raises(TrainingDiverged) as caught:
        fit(tiny_model(), noise_set(64, 0, "train"), noise_set(32, 1, "test"), config, tmp_path, "cpu")
    message = str(caught.value)
    assert re.fullmatch(rf"step (\d+) \(epoch 2\): (loss|gradient norm) is (nan|inf); stopped, the last good "
                        rf"checkpoint \(epoch 1\) is intact in {re.escape(str(tmp_path))}; lower --lr or --beta",
                        message), message
    assert 5 <= int(message.split()[1]) <= 8
    assert len(written) == 2  # step 0 and the end of epoch 1
    for name, content in written[-1].items():
        assert (tmp_path / name).read_bytes() == content, name
    assert [r["epoch"] for r in open_run(tmp_path).metrics()] == [1]
    assert sorted(k for k in open_run(tmp_path).snapshots() if k.startswith("epoch_")) == ["epoch_0000", "epoch_0001"]


def test_train_with_a_huge_lr_stops_with_one_line_and_writes_no_weights(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--data", "shapes", "--n", "64", "--size", "16", "--lr", "1e9",
                                      "--epochs", "2", "--batch-size", "16", "--out", str(out), "--threads", "1"])
    assert isinstance(result.exception, TrainingDiverged), (result.output, result.exception)
    assert re.fullmatch(r"step \d+ \(epoch 1\): .* is (nan|inf); stopped, the last good checkpoint \(step 0, "
                        r"before training\) is intact in .*; lower --lr or --beta", str(result.exception))
    assert load_trainer_state(out / TRAINER_STATE).global_step == 0  # only the start was ever written


# -- learning on real data --------------------------------------------------------------------------


@pytest.mark.skipif(not HAVE_MNIST, reason=f"real MNIST not found under {DATA_DIR} (set LATENTSPACE_DATA)")
def test_vae_learns_mnist_and_logs_one_finite_record_per_epoch(tmp_path):
    train = load("mnist", split="train", data_dir=DATA_DIR, n=2000)
    test = load("mnist", split="test", data_dir=DATA_DIR, n=500)
    torch.manual_seed(0)
    model = build(ModelConfig(latent_dim=8, width=16, hidden=128))
    cfg = TrainConfig(epochs=4, batch_size=64, lr=2e-3, warmup_steps=20, eval_batch_size=500, probe_size=50)
    untrained = evaluate(model, test.images, 500, generator=torch.Generator().manual_seed(0))
    result = fit(model, train, test, cfg, tmp_path, "cpu")

    records = result.history
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert [r["step"] for r in records] == [32, 64, 96, 128]  # 2000 / 64 -> 32 steps, the last of 16 images
    for r in records:
        assert all(math.isfinite(v) for v in r.values()), r
    # Known reference: each pixel as an independent Bernoulli with the train set's mean intensity.
    p = to_float(train.images).mean(0).clamp(1e-4, 1 - 1e-4)
    xt = to_float(test.images)
    mean_image_logp = (xt * p.log() + (1 - xt) * (1 - p).log()).flatten(1).sum(1).mean().item()
    final = records[-1]["test_elbo"]
    assert untrained.elbo < -500  # sanity of the starting point: ~ -784 * log 2
    assert final > records[0]["test_elbo"] + 15  # still improving clearly after the first epoch
    assert final > mean_image_logp + 10  # a lower bound above the mean-image likelihood: it learnt digits
