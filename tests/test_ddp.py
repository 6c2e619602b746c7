"""Training on several processes: `python -m latentspace`, and torchrun with two CPU processes (gloo).

One torchrun launch runs a small script that calls the library's fit() exactly as the CLI does and dumps
each rank's weights; a second launch resumes one of its runs through the real command line
(`torchrun -m latentspace -- train --resume`). Between them they check that the ranks hold the same weights,
that the trajectory is a single process's with the same global batch, that resume is exact, and that a
diverging run stops every rank with the same message instead of hanging.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from latentspace.data import load
from latentspace.models import ModelConfig, build
from latentspace.train import TrainConfig, fit, load_trainer_state, open_run
from latentspace.train.distributed import World, check_batch, noise_seed, shard
from latentspace.train.run import TRAINER_STATE

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N, SIZE = 256, 16
DATA = {"name": "shapes", "size": SIZE, "channels": None, "data_dir": None, "seed": 0, "n": N}
# 256 images in global batches of 45: five full batches and a last one of 31, split 15 / 16 between the two
# ranks, so the loss normalisation is tested on uneven shares too. fp32: bf16 autocast (the default on CPUs with
# native bf16) rounds each half-batch's activations differently, which would hide a wrong normalisation.
CONFIG = TrainConfig(epochs=2, batch_size=45, lr=3e-3, warmup_steps=2, seed=1, eval_batch_size=256, probe_size=8,
                     precision="fp32")
STEPS = 2 * 6
TIMEOUT_S = 180  # a hang (ranks waiting for each other) fails the test instead of blocking CI

SCRIPT = r"""
import json, signal, sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from latentspace.data import load
from latentspace.models import ModelConfig, build
from latentspace.train import TrainConfig, fit
from latentspace.train import loop
from latentspace.train.distributed import current, join, leave
from latentspace.train.ledger import TrainingDiverged

out, spec = Path(sys.argv[1]), json.loads(sys.argv[2])
join(torch.device("cpu"))  # what the CLI does first: torchrun's environment -> the gloo process group
rank = current().rank
data = spec["data"]
train, test = (load(data["name"], split=s, size=data["size"], n=data["n"]) for s in ("train", "test"))
config = TrainConfig.from_dict(spec["config"])


def model(objective):
    torch.manual_seed(0)
    return build(ModelConfig(image_shape=(1, 16, 16), latent_dim=2, width=4, hidden=16, objective=objective))


class CtrlCAfter:  # a Progress (rank 0's only) that sends this process one SIGINT once 3 steps are reported

    def __init__(self):
        self.seen = 0

    def start(self, total, description):
        pass

    def advance(self, n=1, **info):
        self.seen += n
        if self.seen - n < 3 <= self.seen:
            signal.raise_signal(signal.SIGINT)

    def close(self):
        pass


def run(name, objective, cfg, progress=loop.NULL_PROGRESS):
    m = model(objective)
    try:
        fit(m, train, test, cfg, out / name, "cpu", progress=progress, data_info=data)
    except KeyboardInterrupt:
        (out / f"{name}_stopped_rank{rank}.txt").write_text("")
        return
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(out / f"{name}_rank{rank}.safetensors"))


run("ae", "ae", config)
run("straight", "vae", config)
loop.PROGRESS_EVERY_STEPS = 2  # the ranks agree on a Ctrl-C at every second step: stop mid-epoch
run("interrupted", "vae", config, progress=CtrlCAfter())
loop.PROGRESS_EVERY_STEPS = 20
try:
    fit(model("vae"), train, test, config.with_changes(lr=1e9), out / "diverged", "cpu", data_info=data)
except TrainingDiverged as e:
    (out / f"diverged_rank{rank}.txt").write_text(str(e))
leave()
"""


def torchrun(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone", *args]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def ddp(tmp_path_factory) -> Path:
    """The script's four runs on two processes, then `interrupted` resumed through the CLI."""
    out = tmp_path_factory.mktemp("ddp")
    script = out / "fit_on_two.py"
    script.write_text(SCRIPT)
    torchrun(str(script), str(out), json.dumps({"data": DATA, "config": CONFIG.to_dict()}))
    # `--` ends torchrun's own options: argparse would otherwise take --n for an abbreviation of --nnodes
    stopped = load_trainer_state(out / "interrupted" / TRAINER_STATE)
    (out / "stopped_at.txt").write_text(f"{stopped.global_step} {stopped.epoch} {stopped.step_in_epoch}")
    cli = torchrun("-m", "latentspace", "--", "train", "--resume", "--out", str(out / "interrupted"))
    (out / "resumed_cli.txt").write_text(cli.stdout)
    return out


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def test_each_rank_takes_a_contiguous_share_and_the_scales_give_the_global_mean():
    batch = torch.arange(31)
    shares = [shard(batch, World(r, 2)) for r in (0, 1)]
    assert torch.equal(torch.cat([rows for rows, _, _ in shares]), batch)
    assert [own for _, own, _ in shares] == [15, 16]
    # DDP averages the ranks' scaled means: that must be the mean over the whole batch
    losses = torch.rand(31, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    averaged = sum(scale * losses[rows].mean() for rows, _, scale in shares) / 2
    assert averaged.item() == pytest.approx(losses.mean().item(), rel=1e-12)
    # a last batch of one image: the rank without a share takes part with a row weighted zero
    last = [shard(batch[:1], World(r, 2)) for r in (0, 1)]
    assert [(rows.tolist(), own, scale) for rows, own, scale in last] == [([0], 0, 0.0), ([0], 1, 2.0)]
    rows, own, scale = shard(batch, World())
    assert rows is batch and (own, scale) == (31, 1.0)


def test_each_rank_draws_its_own_noise_and_one_process_keeps_its_seed():
    assert noise_seed(7, World()) == 7  # single-process runs keep their old noise (and their exact resume)
    assert len({noise_seed(seed, World(r, 4)) for seed in (0, 1) for r in range(4)}) == 8
    assert noise_seed(7, World(1, 2)) == noise_seed(7, World(1, 2))


def test_the_global_batch_must_give_every_rank_an_image():
    check_batch(4, World(0, 4))
    with pytest.raises(ValueError, match="batch_size 3 is smaller than the 4 processes"):
        check_batch(3, World(0, 4))


def test_python_m_latentspace_is_the_latentspace_command():
    import latentspace.__main__ as module_entry

    (script,) = entry_points(group="console_scripts", name="latentspace")
    assert script.load() is module_entry.main  # the same first frame (environment, Ctrl-C at start-up)
    result = subprocess.run([sys.executable, "-m", "latentspace", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    for verb in ("train", "encode", "interpolate", "report"):
        assert verb in result.stdout


@pytest.mark.parametrize("name", ["ae", "straight"])
def test_every_rank_ends_with_the_same_weights_and_saves_them_without_a_ddp_prefix(ddp, name):
    rank0, rank1 = weights(ddp / f"{name}_rank0.safetensors"), weights(ddp / f"{name}_rank1.safetensors")
    for k in rank0:
        torch.testing.assert_close(rank1[k], rank0[k], rtol=0, atol=0, msg=lambda m: f"{k}: {m}")
    run = open_run(ddp / name)  # the run opens like any other: its keys are the model's own
    saved = run.model().state_dict()
    assert sorted(saved) == sorted(rank0) and not any(k.startswith("module.") for k in saved)


def test_two_processes_follow_one_process_with_the_same_global_batch(ddp, tmp_path):
    """The deterministic 'ae' objective has no noise, so only float summation order separates the two runs:
    each step's gradient is the sum of two scaled half-batch means instead of one mean. We see weights agree
    to ~3e-8 after 12 AdamW steps; 1e-5 leaves room for other CPUs' summation order, and is far below what a
    wrong normalisation gives (the last batch's uneven 15 / 16 split weighted as equal halves moves weights
    by 4e-5)."""
    train, test = (load("shapes", split=s, size=SIZE, n=N) for s in ("train", "test"))
    torch.manual_seed(0)
    single = build(ModelConfig(image_shape=(1, SIZE, SIZE), latent_dim=2, width=4, hidden=16, objective="ae"))
    result = fit(single, train, test, CONFIG, tmp_path, "cpu", data_info=DATA)
    ddp_weights = weights(ddp / "ae_rank0.safetensors")
    for k, v in single.state_dict().items():
        torch.testing.assert_close(ddp_weights[k], v, rtol=0, atol=1e-5, msg=lambda m: f"{k}: {m}")
    ddp_history = open_run(ddp / "ae").metrics()
    assert [r["step"] for r in ddp_history] == [r["step"] for r in result.history] == [6, 12]
    for mine, theirs in zip(ddp_history, result.history):
        # the train loss is the mean over both ranks' images, like one process's over the whole batch
        assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-5)
        assert mine["test_loss"] == pytest.approx(theirs["test_loss"], rel=1e-5)
    assert ddp_history[-1]["train_loss"] < ddp_history[0]["train_loss"] - 1.0  # and it learns


def test_ctrl_c_stops_both_ranks_after_the_same_step_with_a_checkpoint(ddp):
    assert all((ddp / f"interrupted_stopped_rank{r}.txt").exists() for r in (0, 1))
    global_step, epoch, step_in_epoch = map(int, (ddp / "stopped_at.txt").read_text().split())
    # rank 0 saw Ctrl-C after its 3rd step at the earliest; the ranks agreed on it at the next even step
    assert global_step % 2 == 0 and 4 <= global_step < STEPS and global_step == 6 * epoch + step_in_epoch


def test_ddp_run_resumed_through_the_cli_ends_with_the_weights_of_an_uninterrupted_one(ddp):
    """gloo sums two ranks' gradients in one order whatever the bucketing, so resume is bit-exact."""
    straight = weights(ddp / "straight" / "model.safetensors")
    resumed = weights(ddp / "interrupted" / "model.safetensors")
    assert sorted(straight) == sorted(resumed)
    for k in straight:
        torch.testing.assert_close(resumed[k], straight[k], rtol=0, atol=0, msg=lambda m: f"{k}: {m}")
    got, want = open_run(ddp / "interrupted").metrics(), open_run(ddp / "straight").metrics()
    assert [r["step"] for r in got] == [6, 12]
    assert [(r["train_loss"], r["test_elbo"]) for r in got] == [(r["train_loss"], r["test_elbo"]) for r in want]
    assert got[1]["train_loss"] < got[0]["train_loss"]
    # rank 1 trains in silence: one table, one "run folder" line
    assert (ddp / "resumed_cli.txt").read_text().count("run folder:") == 1


def test_a_diverging_ddp_run_stops_every_rank_with_the_same_message(ddp):
    messages = [(ddp / f"diverged_rank{r}.txt").read_text() for r in (0, 1)]
    assert messages[0] == messages[1]
    assert messages[0].startswith("step ") and "stopped, the last good checkpoint (step 0, before training)" in messages[0]
    assert load_trainer_state(ddp / "diverged" / "trainer_state.safetensors").global_step == 0
