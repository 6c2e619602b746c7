"""`latentspace sweep`: the plan, its folder names and statuses, and a sweep killed with kill -9 that continues
without training any run twice and ends with the same runs as an uninterrupted one."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from latentspace.api import sweep
from latentspace.cli.main import app

runner = CliRunner()
TINY = ["--train", "n=200", "--train", "width=4", "--train", "hidden=16", "--train", "latent-dim=2",
        "--train", "batch-size=50", "--no-evaluate", "--device", "cpu", "--threads", "1"]


def test_plan_is_every_combination_times_seeds_with_stable_names():
    grid = sweep.parse_grid({"--model": "beta-vae,beta-tcvae", "--beta": "1,4,8", "--lr": None})
    runs = sweep.plan(grid, seeds=3)
    assert len(runs) == 2 * 3 * 3 and len({r.name for r in runs}) == 18
    assert runs[0].name == "model=beta-vae,beta=1,seed=0" and runs[0].group == "model=beta-vae,beta=1"
    assert runs[0].train_args() == ["--model", "beta-vae", "--beta", "1", "--seed", "0"]
    assert [r.seed for r in runs[:3]] == [0, 1, 2]


@pytest.mark.parametrize("spec, message", [({"--beta": "1,,4"}, "comma-separated"), ({"--beta": "1,1"}, "repeated")])
def test_bad_grid_values_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        sweep.parse_grid(spec)


def test_group_rows_give_mean_and_spread_over_seeds():
    rows = [{"mse": 1.0, "objective": "vae"}, {"mse": 3.0, "objective": "vae"}, {"mse": 5.0, "objective": "ae"}]
    merged = sweep.group_rows(rows, ["a", "a", "b"])
    assert merged[0]["run"] == "a" and merged[0]["seeds"] == 2
    assert merged[0]["mse"] == (2.0, pytest.approx(2**0.5)) and merged[0]["objective"] == "vae"
    assert merged[1]["mse"] == (5.0, 0.0)


def test_a_rerun_with_another_grid_is_refused(tmp_path):
    sweep.claim_folder(tmp_path, {"--beta": ["1", "4"]}, [], 2)
    sweep.claim_folder(tmp_path, {"--beta": ["1", "4"]}, [], 2)  # the same: fine
    with pytest.raises(ValueError, match="holds a sweep"):
        sweep.claim_folder(tmp_path, {"--beta": ["1", "8"]}, [], 2)


def _sweep_args(out):
    return ["sweep", "--out", str(out), "--data", "mnist", "--model", "vae", "--seeds", "3", "--train", "epochs=2",
            *TINY]


def _starts(log: str) -> tuple[int, int]:
    """How often a child's log says it began training a run, and continuing one."""
    heads = re.findall(r"^(training|resuming) \S+ \(", log, flags=re.M)
    return heads.count("training"), heads.count("resuming")


def _histories(folder):
    return {p.parent.name: [json.loads(line)["test_elbo"] for line in p.read_text().splitlines()]
            for p in sorted(folder.glob("*/metrics.jsonl"))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, mnist_dir):
    """The sweep run once without interruption: what every other way of running it must end with."""
    folder = tmp_path_factory.mktemp("sweep") / "whole"
    result = runner.invoke(app, _sweep_args(folder), env={"LATENTSPACE_DATA": str(mnist_dir.parent)})
    assert result.exit_code == 0, result.output
    assert "3 to start" in result.output
    return folder


def test_sweep_killed_with_kill_9_continues_without_training_a_run_twice(tmp_path, mnist_dir, reference):
    env = {**os.environ, "LATENTSPACE_DATA": str(mnist_dir.parent)}
    cut = tmp_path / "cut"
    child = subprocess.Popen([sys.executable, "-m", "latentspace", *_sweep_args(cut)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and sweep.status(cut / "model=vae,seed=1") == "todo":
        time.sleep(0.05)  # the second run has started: the first is done
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    states = {p.name: sweep.status(p) for p in cut.iterdir() if p.is_dir() and p.name != "logs"}
    assert states.get("model=vae,seed=0") == "done"

    again = runner.invoke(app, _sweep_args(cut), env=env)
    assert again.exit_code == 0, again.output
    assert "1 done" in again.output
    logs = {p.stem: _starts(p.read_text()) for p in (cut / "logs").glob("*.log")}
    assert logs["model=vae,seed=0"] == (1, 0)  # finished before the kill: not touched again
    for name, (started, continued) in logs.items():  # one start per run, at most one continuation
        assert started == 1 and continued <= 1, name
    assert _histories(cut) == _histories(reference)  # every run as if never interrupted
    third = runner.invoke(app, _sweep_args(cut), env=env)
    assert "3 done, 0 to continue, 0 to start" in third.output


def test_sweep_on_a_local_ray_instance_trains_the_same_runs(tmp_path, mnist_dir, reference, monkeypatch):
    ray = pytest.importorskip("ray") if os.environ.get("CI") != "true" else __import__("ray")
    monkeypatch.setenv("LATENTSPACE_DATA", str(mnist_dir.parent))  # the workers inherit it from this process
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = runner.invoke(app, [*_sweep_args(tmp_path / "ray"), "--backend", "ray", "--jobs", "2"])
    finally:
        ray.shutdown()
    assert result.exit_code == 0, result.output
    assert _histories(tmp_path / "ray") == _histories(reference)


def test_unknown_backend_is_one_line(tmp_path):
    result = runner.invoke(app, [*_sweep_args(tmp_path / "x"), "--backend", "slurm"])
    assert result.exit_code != 0 and "--backend slurm: expected one of local, ray" in str(result.exception)
    assert not (tmp_path / "x").exists()  # refused before anything was written


def test_sweep_ends_with_the_compare_table_mean_and_spread_over_seeds(reference, mnist_dir, tmp_path, quick_evaluator):
    folder = tmp_path / "evaluated"
    shutil.copytree(reference, folder)
    args = [a for a in _sweep_args(folder) if a != "--no-evaluate"]
    result = runner.invoke(app, [*args, "--eval-k", "4", "--iw-images", "16", "--samples", "64",
                                 "--diffusion-steps", "30"], env={"LATENTSPACE_DATA": str(mnist_dir.parent)})
    assert result.exit_code == 0, result.output
    assert "3 done, 0 to continue, 0 to start" in result.output
    elbos = [json.loads((folder / f"model=vae,seed={s}" / "evaluation.json").read_text())["evaluation"]
             ["reconstruction"]["elbo_nats"] for s in range(3)]
    mean, sd = sweep.spread(elbos)
    html = (folder / "compare.html").read_text()
    assert "model=vae (3 seeds)" in html and f"{mean:.2f} ± {sd:.2f}" in html
