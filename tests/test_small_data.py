"""Small folders train well by default (issue 13): defaults that follow the data, the likelihood chosen from the
pixels, the options that round-trip through the run folder, and the comparison with PCA that `train` prints."""
from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import torch

from latentspace.data import load
from latentspace.metrics.compression import against_pca, pca_curve
from latentspace.models import ModelConfig, build
from latentspace.models.config import likelihood_for_pixels
from latentspace.train import TrainConfig, fit, open_run
from latentspace.train import budget
from latentspace.train.budget import MIN_STEPS, default_batch_size, default_epochs
from latentspace.train.loop import _stalled
from latentspace.train.schedule import mirrored

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_likelihood_follows_the_pixels(mnist_test):
    assert likelihood_for_pixels(mnist_test.images) == "bernoulli"  # ink on paper
    assert likelihood_for_pixels(load("shapes", split="test", n=200).images) == "bernoulli"
    assert likelihood_for_pixels(load("faces", split="test", n=200, size=32, channels=1).images) == "gaussian"
    assert likelihood_for_pixels(load("faces", split="test", n=200, size=32).images) == "gaussian"


@pytest.mark.parametrize("n", [50, 400, 500, 3000, 4095])
def test_small_data_gets_at_least_the_minimum_number_of_steps(n):
    batch = default_batch_size(n)
    assert batch == 64
    assert default_epochs(n, batch) * math.ceil(n / batch) >= MIN_STEPS


def test_large_data_keeps_the_usual_schedule():
    assert default_batch_size(60_000) == TrainConfig.batch_size
    assert default_batch_size(60_000, (3, 32, 32)) == TrainConfig.batch_size
    assert default_batch_size(60_000, (1, 64, 64)) == TrainConfig.batch_size
    assert default_batch_size(20_000, (3, 64, 64)) == 64  # large images: more steps per CPU-minute
    assert default_epochs(60_000, TrainConfig.batch_size) == TrainConfig.epochs


def test_mirroring_is_seeded_by_step_and_row():
    x = torch.arange(6 * 4, dtype=torch.float32).reshape(6, 1, 1, 4)
    rows = torch.tensor([10, 3, 7, 0, 5, 9])
    a, b = mirrored(x, rows, seed=1, step=5), mirrored(x, rows, seed=1, step=5)
    torch.testing.assert_close(a, b)
    flipped = (a != x).any(dim=(1, 2, 3))
    assert torch.equal(a[flipped], x[flipped].flip(-1)) and torch.equal(a[~flipped], x[~flipped])
    changes = sum(int(((mirrored(x, rows, 1, s) != x).any(dim=(1, 2, 3))).sum()) for s in range(50))
    assert 0.35 < changes / (50 * 6) < 0.65  # about half the rows, step after step


def test_new_options_round_trip_through_the_run_folder(tmp_path):
    train, test = load("shapes", split="train", n=64, size=16), load("shapes", split="test", n=32, size=16)
    config = TrainConfig(epochs=2, batch_size=32, hflip=True, early_stop=3, probe_size=0)
    torch.manual_seed(0)
    fit(build(ModelConfig(image_shape=train.shape, latent_dim=2)), train, test, config, tmp_path, "cpu")
    assert open_run(tmp_path).train_config == config


def test_a_time_budget_is_steps_plus_evaluation_per_epoch(monkeypatch):
    train, test = load("shapes", split="train", n=1000, size=16), load("shapes", split="test", n=300, size=16)
    model = build(ModelConfig(image_shape=train.shape, latent_dim=2))
    config = TrainConfig(batch_size=100, eval_batch_size=200)
    monkeypatch.setattr(budget, "_seconds_per_step", lambda *a: 0.05)
    monkeypatch.setattr(budget, "_seconds_per_eval_batch", lambda *a: 0.25)
    # an epoch: 10 steps of 0.05 s and 2 evaluation batches of 0.25 s = 1 s; the plan fills 92% of a minute
    assert budget.PLANNED_SHARE == 0.92
    assert budget.epochs_for_minutes(1.0, model, train, test, config, torch.device("cpu")) == 55
    assert budget.epochs_for_minutes(0.001, model, train, test, config, torch.device("cpu")) == 1
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="minutes must be a positive number"):
            budget.epochs_for_minutes(bad, model, train, test, config, torch.device("cpu"))


def test_the_step_probe_times_past_a_slow_start_and_within_its_share(monkeypatch):
    """A fake clock: the first 30 steps take 20 ms, the rest 16 ms (a fresh process warming up). The probe
    reports the steady 16 ms (its steps' first quartile), and runs as many steps as its seconds allow, at least
    PROBE_STEPS."""
    train = load("shapes", split="train", n=300, size=16)
    model = build(ModelConfig(image_shape=train.shape, latent_dim=2))
    clock, calls = [0.0], []

    def fake_step(*args, **kwargs):
        calls.append(1)
        clock[0] += 0.020 if len(calls) <= 30 else 0.016

    monkeypatch.setattr(budget, "train_step", fake_step)
    monkeypatch.setattr(budget.time, "perf_counter", lambda: clock[0])
    config = TrainConfig(batch_size=50)
    assert budget._seconds_per_step(model, train, config, torch.device("cpu"), 2.0) == pytest.approx(0.016)
    assert len(calls) == 30 + math.ceil((2.0 - 30 * 0.020) / 0.016)  # steps until the clock passes 2 s
    calls.clear()
    clock[0] = 0.0
    budget._seconds_per_step(model, train, config, torch.device("cpu"), 0.0)
    assert len(calls) == budget.WARM_STEPS + budget.PROBE_STEPS


def test_the_time_probe_leaves_the_model_and_the_random_state_alone():
    train, test = load("shapes", split="train", n=300, size=16), load("shapes", split="test", n=100, size=16)
    torch.manual_seed(0)
    model = build(ModelConfig(image_shape=train.shape, latent_dim=2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    epochs = budget.epochs_for_minutes(0.05, model, train, test, TrainConfig(batch_size=50), torch.device("cpu"))
    assert epochs >= 1
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng)


def cli(monkeypatch, *args: str) -> int:
    from latentspace.cli.main import main

    monkeypatch.setattr(sys, "argv", ["latentspace", *args])
    with pytest.raises(SystemExit) as stop:
        main()
    return stop.value.code or 0


def test_the_cli_trains_for_minutes_and_records_the_model_options(tmp_path, capsys, monkeypatch, mnist_dir):
    args = ["train", "--data", "mnist", "--data-dir", str(mnist_dir), "--n", "300", "--out", str(tmp_path / "r"),
            "--threads", "1", "--width", "8", "--hidden", "32", "--latent-dim", "4", "--binarize",
            "--precision", "fp32"]
    assert cli(monkeypatch, *args, "--minutes", "0.05", "--epochs", "3") == 2
    assert "--minutes and --epochs" in capsys.readouterr().err
    assert cli(monkeypatch, *args, "--minutes", "0") == 2
    assert "--minutes 0.0: expected a positive number" in capsys.readouterr().err
    assert cli(monkeypatch, *args, "--minutes", "0.05") == 0
    assert "(about 0.05 minutes here)" in capsys.readouterr().out
    run = open_run(tmp_path / "r")
    assert run.train_config.minutes == 0.05 and run.train_config.epochs == len(run.metrics()) >= 1
    assert run.train_config.precision == "fp32"
    m = run.model_config
    assert (m.width, m.hidden, m.latent_dim, m.binarize, m.likelihood) == (8, 32, 4, True, "bernoulli")


def test_early_stopping_reads_the_test_elbo_history(tmp_path):
    lines = [{"epoch": e, "test_elbo": v} for e, v in enumerate([-90.0, -80.0, -81.0, -82.0], start=1)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert _stalled(tmp_path, 2) and not _stalled(tmp_path, 3)


def test_an_overfitting_run_stops_early(tmp_path):
    train, test = load("shapes", split="train", n=48, size=16), load("shapes", split="test", n=48, size=16, seed=1)
    config = TrainConfig(epochs=60, batch_size=16, lr=1e-2, early_stop=3, probe_size=0, warmup_steps=0)
    torch.manual_seed(0)
    result = fit(build(ModelConfig(image_shape=train.shape, latent_dim=8)), train, test, config, tmp_path, "cpu")
    elbos = [r["test_elbo"] for r in result.history]
    assert result.epochs < 60
    assert len(elbos) - 1 - int(np.argmax(elbos)) == 3  # stopped exactly when the patience ran out


def test_the_pca_baseline_measures_the_model_and_pca_on_the_same_images():
    train, test = load("shapes", split="train", n=200, size=16), load("shapes", split="test", n=100, size=16)
    torch.manual_seed(0)
    model = build(ModelConfig(image_shape=train.shape, latent_dim=4))
    baseline = against_pca(model, train, test)
    curve = pca_curve(train.images, test.images, components=(4,))
    assert baseline.pca_mse == pytest.approx(curve.mse[0]) and baseline.components == 4
    assert baseline.mean_mse == pytest.approx(curve.mean_image_mse)
    assert baseline.model_mse > baseline.pca_mse and not baseline.beats_pca  # an untrained model loses
    assert "WORSE than PCA with 4 components" in baseline.verdict()


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ("--data", "faces", "--n", "400", "--size", "64", "--channels", "1"),  # a few hundred grey photos
    ("--data", "mnist", "--n", "500"),                                       # a few hundred digits
], ids=["faces-400-64px-grey", "mnist-500"])
def test_default_training_of_a_small_set_is_no_worse_than_pca(args, tmp_path, capsys, monkeypatch, mnist_dir):
    """The acceptance of issue 13 item 3, through the command users run, with every training default."""
    import sys

    from latentspace.cli.main import main

    # --threads 2: the module otherwise runs torch on one thread, and this is the suite's longest test.
    monkeypatch.setattr(sys, "argv", ["latentspace", "train", *args, "--device", "cpu", "--threads", "2",
                                      "--out", str(tmp_path / "r")])
    with pytest.raises(SystemExit) as stop:
        main()
    out = capsys.readouterr().out
    assert stop.value.code in (0, None), out
    assert "reconstruction: no worse than PCA with 16 components" in out
    run = open_run(tmp_path / "r")
    assert run.train_config.batch_size == 64 and run.metrics()[-1]["step"] >= MIN_STEPS
