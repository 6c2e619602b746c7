"""The training loop's parts: config validation, schedules, train_step, evaluate, and learning on real MNIST."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from latentspace.data import load, to_float
from latentspace.models import ModelConfig, build
from latentspace.train import TrainConfig, evaluate, fit, kl_weight_at, lr_at, train_step
from latentspace.train.loop import epoch_permutation, probe_index

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
    train_step(model, opt, x, generator=torch.Generator().manual_seed(0), grad_clip=1e-3)
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    assert norm.item() == pytest.approx(1e-3, rel=1e-4)
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
