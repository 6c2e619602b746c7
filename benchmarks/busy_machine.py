"""Training on a busy machine: `latentspace train` throughput quiet, then beside 1, 2 and 3 other 2-thread torch
jobs, with the CLI's start-up thread settings and with OpenMP's defaults, all in one run (issue 13 item 4).

The job measured: `latentspace train --data faces --size 32 --n N --epochs E` as a user runs it (a subprocess, so
the thread settings the CLI makes at start-up are the ones measured); its images/s is the median of its epochs'
`images_per_s` in metrics.jsonl (training only, without the per-epoch evaluation). A competitor is another
2-thread torch training loop (conv net, batch 128), started with OpenMP's default settings as any other program
would be, and running before the measured job starts and until it ends.

"defaults" runs the same command with OMP_WAIT_POLICY set to an empty value, which the CLI keeps (it only fills in
settings the user left unset) and libgomp ignores: that is how the CLI behaved before it chose thread settings.

Prints images/s and the share of quiet throughput kept for each setting and number of competitors; target: at
least 0.35 beside one competitor (a fair share is about 0.5 on 2 cores), and no collapse with more.

    python benchmarks/busy_machine.py [--n 6000] [--epochs 3] [--competitors 0,1,2,3]
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

COMPETITOR = """
import torch, time
torch.set_num_threads(2)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(32, 32, 3, padding=1),
                          torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(32 * 32 * 32, 10))
opt = torch.optim.SGD(net.parameters(), lr=1e-3)
x, y = torch.randn(128, 3, 32, 32), torch.randint(0, 10, (128,))
while True:
    opt.zero_grad(); torch.nn.functional.cross_entropy(net(x), y).backward(); opt.step()
"""
TARGET = 0.35
SETTINGS = {"cli": {}, "defaults": {"OMP_WAIT_POLICY": ""}}


def competitor_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "GOMP_", "KMP_"))}
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
    p.add_argument("--competitors", default="0,1,2,3", help="numbers of competing 2-thread jobs to try")
    args = p.parse_args()
    counts = [int(c) for c in args.competitors.split(",")]
    results: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for count in counts:
            jobs = [subprocess.Popen([sys.executable, "-c", COMPETITOR], env=competitor_env()) for _ in range(count)]
            try:
                time.sleep(3 if count else 0)  # competitors past their start-up before the clock runs
                for name, extra in SETTINGS.items():
                    results[name, count] = measure(Path(tmp), f"{name}-{count}", extra, args.n, args.epochs)
            finally:
                for job in jobs:
                    job.kill()
                    job.wait()
    print(f"latentspace train, faces 32 px, {args.n} images, median of {args.epochs} epochs; load before: "
          f"{os.getloadavg()[0]:.2f}")
    print(f"{'setting':<10} {'competitors':>11} {'images/s':>9} {'kept':>6}  target")
    for (name, count), rate in results.items():
        quiet = results.get((name, 0))
        kept = rate / quiet if quiet else float("nan")
        target = f">= {TARGET}" if count == 1 else ("no collapse" if count > 1 else "baseline")
        verdict = "ok" if count != 1 or kept >= TARGET else "MISSED"
        print(f"{name:<10} {count:>11} {rate:>9,.0f} {kept:>6.2f}  {target} {verdict if count == 1 else ''}")


if __name__ == "__main__":
    main()
