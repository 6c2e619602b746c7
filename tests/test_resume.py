"""Resume: a run interrupted anywhere and resumed ends with exactly the weights of an uninterrupted run."""
from __future__ import annotations

import signal

import numpy as np
import pytest
import torch

from latentspace.data import ImageSet
from latentspace.models import ModelConfig, build
from latentspace.train import TrainConfig, fit, load_trainer_state, open_run
from latentspace.train import loop as loop_module
from latentspace.train.run import TRAINER_STATE

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHAPE = (1, 16, 16)
N_TRAIN, BATCH = 100, 32  # 4 steps per epoch, the last one of 4 images
STEPS_PER_EPOCH = 4
CONFIG = TrainConfig(epochs=2, batch_size=BATCH, lr=3e-3, warmup_steps=3, kl_warmup_epochs=0.75, seed=3,
                     eval_batch_size=64, probe_size=10)
COMPARED = ("epoch", "step", "train_loss", "train_elbo", "test_loss", "test_elbo", "test_recon_nll", "test_kl", "lr",
            "kl_weight")


def image_set(n: int, seed: int, split: str) -> ImageSet:
    rng = np.random.default_rng(seed)
    # Blobs, not uniform noise, so the model has something to learn and gradients are not all alike.
    base = rng.random((n, 1, 4, 4)) ** 2
    images = np.kron(base, np.ones((1, 1, 4, 4)))
    return ImageSet(images=(images * 255).astype(np.uint8), name="blobs", labels=rng.integers(0, 3, n), split=split)


TRAIN, TEST = image_set(N_TRAIN, 0, "train"), image_set(40, 1, "test")


def new_model(objective: str = "vae"):
    torch.manual_seed(0)  # only the initial weights; training randomness goes through explicit generators
    return build(ModelConfig(image_shape=SHAPE, latent_dim=2, width=4, hidden=16, objective=objective))


class InterruptAfter:
    """A Progress that interrupts once ``steps`` steps are reported: by raising, or by a real SIGINT."""

    def __init__(self, steps: int, how: str = "raise") -> None:
        self.steps, self.how, self.seen = steps, how, 0

    def start(self, total: int, description: str) -> None:
        pass

    def advance(self, n: int = 1, **info) -> None:
        self.seen += n
        if self.seen == self.steps:
            if self.how == "raise":
                raise KeyboardInterrupt
            signal.raise_signal(signal.SIGINT)

    def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def report_every_step(monkeypatch):
    monkeypatch.setattr(loop_module, "PROGRESS_EVERY_STEPS", 1)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("whole")
    model = new_model()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop_module, "PROGRESS_EVERY_STEPS", 1)
        result = fit(model, TRAIN, TEST, CONFIG, run_dir, "cpu")
    return model, result, run_dir


def assert_same_run(model, run_dir, reference) -> None:
    ref_model, ref_result, ref_dir = reference
    ref_params = dict(ref_model.named_parameters())
    for name, p in model.named_parameters():
        torch.testing.assert_close(p, ref_params[name], rtol=0, atol=0, msg=lambda m: f"{name}: {m}")
    got, want = open_run(run_dir).metrics(), ref_result.history
    assert [r["epoch"] for r in got] == [1, 2]
    for g, w in zip(got, want):
        assert {k: g[k] for k in COMPARED} == {k: w[k] for k in COMPARED}
    snaps, ref_snaps = open_run(run_dir).snapshots(), open_run(ref_dir).snapshots()
    assert sorted(snaps) == sorted(ref_snaps)
    assert sorted(snaps) == ["epoch_0000", "epoch_0001", "epoch_0002", "probe_index", "probe_labels"]
    for k in snaps:
        np.testing.assert_array_equal(snaps[k], ref_snaps[k])


@pytest.mark.parametrize(
    "steps, how, position",
    [
        (2, "raise", (0, 2)),  # mid-epoch
        (4, "raise", (0, 4)),  # all steps of epoch 1 done, its evaluation not yet
        (4, "sigint", (1, 0)),  # Ctrl-C during the last step: honoured at the epoch boundary
        (6, "sigint", (1, 2)),  # Ctrl-C mid-epoch 2: honoured before the next step
    ],
)
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, uninterrupted, steps, how, position):
    model = new_model()
    with pytest.raises(KeyboardInterrupt):
        fit(model, TRAIN, TEST, CONFIG, tmp_path, "cpu", progress=InterruptAfter(steps, how))
    state = load_trainer_state(tmp_path / TRAINER_STATE)
    assert (state.epoch, state.step_in_epoch) == position
    assert state.global_step == position[0] * STEPS_PER_EPOCH + position[1]
    assert len(open_run(tmp_path).metrics()) == position[0]

    resumed = new_model()  # fresh weights: everything must come from the checkpoint
    result = fit(resumed, TRAIN, TEST, CONFIG, tmp_path, "cpu", resume=True)
    assert (result.epochs, result.global_step) == (2, 2 * STEPS_PER_EPOCH)
    assert_same_run(resumed, tmp_path, uninterrupted)


@pytest.mark.parametrize("call", [2, 7])  # loss calls: 4 steps + 1 evaluation batch per epoch
def test_interrupt_inside_a_step_keeps_the_last_consistent_checkpoint(tmp_path, uninterrupted, call):
    model = new_model()
    real_loss, calls = model.loss, []

    def loss_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:  # before this step's update is applied
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    model.loss = loss_then_interrupt
    with pytest.raises(KeyboardInterrupt):
        fit(model, TRAIN, TEST, CONFIG, tmp_path, "cpu")
    if call == 2:  # only the step-0 checkpoint: resuming starts the run again from it
        state = load_trainer_state(tmp_path / TRAINER_STATE)
        assert (state.epoch, state.step_in_epoch, state.global_step) == (0, 0, 0)
    else:
        state = load_trainer_state(tmp_path / TRAINER_STATE)
        assert (state.epoch, state.step_in_epoch, state.global_step) == (1, 0, STEPS_PER_EPOCH)

    resumed = new_model()
    fit(resumed, TRAIN, TEST, CONFIG, tmp_path, "cpu", resume=True)
    assert_same_run(resumed, tmp_path, uninterrupted)


def test_resume_can_extend_epochs(tmp_path):
    fit(new_model(), TRAIN, TEST, CONFIG.with_changes(epochs=1), tmp_path, "cpu")
    result = fit(new_model(), TRAIN, TEST, CONFIG.with_changes(epochs=3), tmp_path, "cpu", resume=True)
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    assert [r["step"] for r in result.history] == [4, 8, 12]
    assert open_run(tmp_path).train_config.epochs == 3
    assert sorted(k for k in open_run(tmp_path).snapshots() if k.startswith("epoch_")) == [
        "epoch_0000", "epoch_0001", "epoch_0002", "epoch_0003"]


def test_resume_of_a_finished_run_trains_nothing(tmp_path, uninterrupted):
    model = new_model()
    fit(model, TRAIN, TEST, CONFIG, tmp_path, "cpu")
    again = new_model()
    result = fit(again, TRAIN, TEST, CONFIG, tmp_path, "cpu", resume=True)
    assert len(result.history) == 2
    assert_same_run(again, tmp_path, uninterrupted)
    with pytest.raises(ValueError, match="has completed 2 epochs; epochs=1 must be at least that"):
        fit(new_model(), TRAIN, TEST, CONFIG.with_changes(epochs=1), tmp_path, "cpu", resume=True)


def test_resume_refuses_a_changed_trajectory(tmp_path):
    fit(new_model(), TRAIN, TEST, CONFIG.with_changes(epochs=1), tmp_path, "cpu")
    with pytest.raises(ValueError, match=r"lr=0\.01 \(run has 0\.003\)"):
        fit(new_model(), TRAIN, TEST, CONFIG.with_changes(lr=0.01), tmp_path, "cpu", resume=True)
    fit(new_model(), TRAIN, TEST, CONFIG.with_changes(epochs=1), tmp_path, "cpu", resume=True)  # same: fine
    with pytest.raises(ValueError, match="model to resume"):
        fit(new_model("ae"), TRAIN, TEST, CONFIG, tmp_path, "cpu", resume=True)


def test_resume_of_completed_epochs_without_their_checkpoint_is_refused_and_changes_nothing(tmp_path):
    fit(new_model(), TRAIN, TEST, CONFIG.with_changes(epochs=1), tmp_path, "cpu")
    (tmp_path / TRAINER_STATE).unlink()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ValueError, match=r"trainer_state\.safetensors: missing, yet the run has completed 1 epoch"):
        fit(new_model(), TRAIN, TEST, CONFIG, tmp_path, "cpu", resume=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_fresh_fit_refuses_a_folder_holding_a_run(tmp_path):
    fit(new_model(), TRAIN, TEST, CONFIG.with_changes(epochs=1), tmp_path, "cpu")
    before = (tmp_path / "metrics.jsonl").read_bytes()
    with pytest.raises(ValueError, match="already holds a run"):
        fit(new_model(), TRAIN, TEST, CONFIG, tmp_path, "cpu")
    assert (tmp_path / "metrics.jsonl").read_bytes() == before


def test_resume_drops_records_written_after_the_checkpoint(tmp_path, uninterrupted):
    """A crash between the metrics record and the checkpoint must not leave a duplicate record."""
    model = new_model()
    with pytest.raises(KeyboardInterrupt):
        fit(model, TRAIN, TEST, CONFIG, tmp_path, "cpu", progress=InterruptAfter(3))
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 1, "test_elbo": 0.0}\n{"epoch": 2, "tor')  # a stray record and a torn line
    resumed = new_model()
    fit(resumed, TRAIN, TEST, CONFIG, tmp_path, "cpu", resume=True)
    assert_same_run(resumed, tmp_path, uninterrupted)
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2


def test_moments_come_back_in_the_layout_of_their_channels_last_weight(tmp_path):
    from latentspace.train.checkpoint import save_trainer_state

    def stepped():
        torch.manual_seed(0)
        conv = torch.nn.Conv2d(2, 4, 3).to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(conv.parameters(), lr=0.1, fused=True)
        conv(torch.randn(3, 2, 6, 6)).square().sum().backward()
        opt.step()
        return conv, opt

    conv, opt = stepped()
    save_trainer_state(tmp_path / "state.safetensors", opt, 1, 0, 1, 1, {}, {})
    twin, restored = stepped()
    restored.state.clear()
    load_trainer_state(tmp_path / "state.safetensors", restored)
    w = twin.weight
    assert all(restored.state[w][k].stride() == w.stride() for k in ("exp_avg", "exp_avg_sq"))
    for model, optimizer in ((conv, opt), (twin, restored)):  # the next step is the same from either
        optimizer.zero_grad()
        model(torch.ones(3, 2, 6, 6)).square().sum().backward()
        optimizer.step()
    torch.testing.assert_close(twin.weight, conv.weight, rtol=0, atol=0)
