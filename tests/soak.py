"""kill -9 soak: train a run while killing it at random moments, resume until it finishes, and compare it bit for
bit with an uninterrupted run. Shared by tests/test_soak.py (a few kills) and benchmarks/soak.py (many)."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from safetensors.numpy import load_file

SCRIPT = [sys.executable, "-c", "from latentspace.cli.entry import main; main()"]
JOB = ["--data", "shapes", "--n", "3000", "--size", "16", "--latent-dim", "2", "--batch-size", "60",
       "--epochs", "8", "--threads", "1", "--device", "cpu"]


@dataclass
class SoakResult:
    kills: int            # SIGKILLs delivered while the run was still going
    resumes: int          # resume commands started in all
    identical_weights: bool
    identical_metrics: bool
    wall_s: float


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _train(out: Path, resume: bool, launcher: list[str]) -> subprocess.Popen:
    args = [*launcher, "train", *JOB, "--out", str(out), *(["--resume"] if resume else [])]
    # Own session: a kill reaches every process of the job (torchrun's workers included).
    return subprocess.Popen(args, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def run_uninterrupted(out: Path, launcher: list[str] = SCRIPT) -> None:
    proc = _train(out, False, launcher)
    err = proc.communicate(timeout=600)[1]
    if proc.returncode != 0:
        raise RuntimeError(f"uninterrupted training failed: {err[-2000:]}")


def soak(out: Path, reference: Path, kills: int, seed: int, launcher: list[str] = SCRIPT,
         window: tuple[float, float] = (2.0, 9.0)) -> SoakResult:
    """Kill ``kills`` times at uniform random moments in ``window`` seconds after each start, then finish."""
    rng, started, delivered, resumes = random.Random(seed), time.perf_counter(), 0, 0
    while True:
        proc = _train(out, resume=resumes > 0 and (out / "config.json").exists(), launcher=launcher)
        resumes += 1
        if delivered < kills:
            try:
                proc.wait(timeout=rng.uniform(*window))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                delivered += 1
                continue
        err = proc.communicate(timeout=600)[1]
        if proc.returncode != 0:
            raise RuntimeError(f"training after {delivered} kills failed ({proc.returncode}): {err[-2000:]}")
        if delivered >= kills:
            break
    return SoakResult(delivered, resumes, _same_weights(out, reference), _same_metrics(out, reference),
                      time.perf_counter() - started)


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    return wa.keys() == wb.keys() and all(wa[k].tobytes() == wb[k].tobytes() for k in wa)


def _same_metrics(a: Path, b: Path) -> bool:
    import json

    def elbos(p: Path) -> list[tuple[int, float]]:
        lines = (p / "metrics.jsonl").read_text().splitlines()
        return [(r["epoch"], r["test_elbo"]) for r in map(json.loads, lines)]

    return elbos(a) == elbos(b)
