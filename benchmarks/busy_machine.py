"""Training on a busy machine: `latentspace train` throughput quiet, then beside 1 and 2 other 2-thread torch jobs
of each kind, with the CLI's start-up thread plan, with what the CLI did before it and with OpenMP's defaults, all
in one run (issues 13 and 22).

The job measured: `latentspace train --data faces --size 32 --n N --epochs E` as a user runs it (a subprocess, so
the thread settings the CLI makes at start-up are the ones measured); its images/s is the median of its epochs'
`images_per_s` in metrics.jsonl (training only, without the per-epoch evaluation). A competitor is another
2-thread torch program started before the measured job and running until it ends: a loop of 128x128 matmuls and
sigmoids (small operations: its threads meet at a barrier every few microseconds), or a conv-net training loop
(batch 128); each either with OpenMP's defaults (its threads spin at barriers, as any program's do) or passive.

Settings: "cli" (utils.threads: on a quiet machine OpenMP's defaults and every core; on a busy one passive
waiting and the free cores), "passive" (2 threads that sleep at every barrier: the CLI before issue 22), and
"defaults" (2 threads, OpenMP's defaults; an empty OMP_WAIT_POLICY counts as the user's and is kept).

Prints images/s, the share of the setting's own quiet throughput kept and the ratio to the cli's quiet figure;
target: at least 0.35 beside one competitor (a fair share is about 0.5 on 2 cores), and no collapse with more.

    python benchmarks/busy_machine.py [--n 6000] [--epochs 3] [--competitors 0,1,2] [--kinds matmul-spinning,...]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONV = """
import torch, time
torch.set_num_threads(2)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(32, 32, 3, padding=1),
                          torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(32 * 32 * 32, 10))
opt = torch.optim.SGD(net.parameters(), lr=1e-3)
x, y = torch.randn(128, 3, 32, 32), torch.randint(0, 10, (128,))
while True:
    opt.zero_grad(); torch.nn.functional.cross_entropy(net(x), y).backward(); opt.step()
"""
MATMUL = """
import torch
torch.set_num_threads(2)
a = torch.randn(128, 128)
while True:
    a = torch.sigmoid(a @ a) - 0.5
"""
# name -> (program, its OpenMP wait policy: "" is OpenMP's default, which spins at barriers)
COMPETITORS = {"matmul-spinning": (MATMUL, ""), "matmul-passive": (MATMUL, "PASSIVE"),
               "conv-spinning": (CONV, ""), "conv-passive": (CONV, "PASSIVE")}
TARGET = 0.35
# "cli": the start-up thread plan (utils.threads); "passive": what the CLI did before it (2 threads that sleep at
# every barrier); "defaults": OpenMP's defaults, 2 spinning threads (an empty value counts as the user's and is kept).
SETTINGS = {"cli": {}, "passive": {"OMP_WAIT_POLICY": "PASSIVE"}, "defaults": {"OMP_WAIT_POLICY": ""}}


def competitor_env(policy: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "GOMP_", "KMP_"))}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    return env


def measure(workdir: Path, tag: str, extra_env: dict[str, str], n: int, epochs: int) -> float:
    out = workdir / tag
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "KMP_"))}
    env.update(extra_env)
    cmd = [sys.executable, "-m", "latentspace", "train", "--data", "faces", "--size", "32", "--n", str(n),
           "--epochs", str(epochs), "--device", "cpu", "--out", str(out)]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rates = [json.loads(line)["images_per_s"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(rates)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=6000, help="training images (faces, 32 px)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--competitors", default="0,1,2", help="numbers of competing 2-thread jobs to try")
    p.add_argument("--kinds", default="matmul-spinning,matmul-passive",
                   help=f"competitor kinds, of: {', '.join(COMPETITORS)}")
    args = p.parse_args()
    counts = [int(c) for c in args.competitors.split(",")]
    kinds = [k.strip() for k in args.kinds.split(",")]
    if unknown := [k for k in kinds if k not in COMPETITORS]:
        raise SystemExit(f"unknown competitor kinds {unknown}; known: {', '.join(COMPETITORS)}")
    runs = [("quiet", 0)] * (0 in counts) + [(kind, c) for kind in kinds for c in counts if c]
    results: dict[tuple[str, str, int], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, count in runs:
            program, policy = COMPETITORS.get(kind, ("", ""))
            jobs = [subprocess.Popen([sys.executable, "-c", program], env=competitor_env(policy))
                    for _ in range(count)]
            try:
                time.sleep(3 if count else 0)  # competitors past their start-up before the clock runs
                for name, extra in SETTINGS.items():
                    tag = f"{name}-{kind}-{count}"
                    results[name, kind, count] = measure(Path(tmp), tag, extra, args.n, args.epochs)
            finally:
                for job in jobs:
                    job.kill()
                    job.wait()
    print(f"latentspace train, faces 32 px, {args.n} images, median of {args.epochs} epochs; {os.cpu_count()} CPUs")
    print(f"{'setting':<9} {'competitor':<16} {'n':>2} {'images/s':>9} {'kept':>6} {'vs cli quiet':>12}  target")
    for (name, kind, count), rate in results.items():
        own, cli = results.get((name, "quiet", 0)), results.get(("cli", "quiet", 0))
        kept = rate / own if own else float("nan")
        target = f">= {TARGET} of own quiet" if count == 1 else ("no collapse" if count > 1 else "baseline")
        verdict = ("ok" if kept >= TARGET else "MISSED") if count == 1 else ""
        print(f"{name:<9} {kind:<16} {count:>2} {rate:>9,.0f} {kept:>6.2f} {rate / cli if cli else float('nan'):>12.2f}"
              f"  {target} {verdict}")


if __name__ == "__main__":
    main()
