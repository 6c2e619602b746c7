"""kill -9 soak: train a run while killing it at random moments, resume until it finishes, and compare it bit for
bit with an uninterrupted run. Shared by tests/test_soak.py (two kills; the benchmark does 25) and benchmarks/soak.py (many)."""
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
    kills: int            # SIGKILLs that landed before the run had finished (during start-up or training)
    commands: int         # train commands started in all (fresh and --resume)
    runs: int             # runs trained to the end through kills, each compared with the reference
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


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant at once (torchrun's workers live in sessions of their own, so
    killing the launcher's process group alone would leave them training)."""
    family, todo = [], [pid]
    while todo:
        parent = todo.pop()
        family.append(parent)
        children = Path(f"/proc/{parent}/task/{parent}/children")
        todo += [int(c) for c in children.read_text().split()] if children.exists() else []
    for member in family:
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _finished(out: Path) -> bool:
    path = out / "metrics.jsonl"
    return path.exists() and len(path.read_text().splitlines()) >= int(JOB[JOB.index("--epochs") + 1])


def soak(out: Path, reference: Path, kills: int, seed: int, launcher: list[str] = SCRIPT,
         window: tuple[float, float] = (2.0, 9.0)) -> SoakResult:
    """Train runs to the end while killing each command at a uniform random moment in ``window`` seconds after
    its start, until ``kills`` kills have landed before a run finished; every run is compared with ``reference``."""
    rng, started = random.Random(seed), time.perf_counter()
    landed = commands = runs = 0
    same_weights = same_metrics = True
    while landed < kills:
        folder = out / f"run{runs}"
        while True:
            proc = _train(folder, resume=(folder / "config.json").exists(), launcher=launcher)
            commands += 1
            try:
                proc.wait(timeout=rng.uniform(*window))
            except subprocess.TimeoutExpired:
                unfinished = not _finished(folder)
                _kill_tree(proc.pid)
                proc.wait()
                landed += unfinished
                continue
            err = proc.stderr.read() if proc.stderr else ""
            if proc.returncode != 0:
                raise RuntimeError(f"training after {landed} kills failed ({proc.returncode}): {err[-2000:]}")
            if _finished(folder):
                break
        runs += 1
        same_weights &= _same_weights(folder, reference)
        same_metrics &= _same_metrics(folder, reference)
    return SoakResult(landed, commands, runs, same_weights, same_metrics, time.perf_counter() - started)


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    return wa.keys() == wb.keys() and all(wa[k].tobytes() == wb[k].tobytes() for k in wa)


def _same_metrics(a: Path, b: Path) -> bool:
    import json

    def elbos(p: Path) -> list[tuple[int, float]]:
        lines = (p / "metrics.jsonl").read_text().splitlines()
        return [(r["epoch"], r["test_elbo"]) for r in map(json.loads, lines)]

    return elbos(a) == elbos(b)
