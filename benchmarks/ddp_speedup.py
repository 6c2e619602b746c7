r"""Training on several processes: the same job on 1 process and on N torchrun processes, same CPU threads in all.

The job is one `latentspace train` command (same data, model, epochs and global batch, so the same number of
optimiser steps). The single process gets all T threads (`--threads T`, OMP_NUM_THREADS=T); the N processes get
T / N threads each (at least 1), so both use the same cores. Training speed is read from each run's
metrics.jsonl: images over the seconds of the training phase (evaluation excluded), the first epoch left out as
warm-up when there are several. Wall time (start-up, data loading, evaluation and all) is printed beside it.

Prints images/s for each and the speed-up ratio (N processes over 1). On a machine shared with other work, run it
with OMP_WAIT_POLICY=PASSIVE (both sides inherit the environment): a 2-thread process whose OpenMP threads spin
collapses when another program holds one of the cores (we saw 10x slower than 1 thread).

    python benchmarks/ddp_speedup.py --data mnist --data-dir ../shared/data/mnist --n 10000 --epochs 3 \
        --procs 2 --threads 2 [--repeats 3]
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


def train(procs: int, threads: int, out: Path, args: argparse.Namespace) -> tuple[float, float]:
    """(training images/s, wall seconds) of one `latentspace train` on ``procs`` processes."""
    job = ["train", "--data", args.data, "--n", str(args.n), "--epochs", str(args.epochs),
           "--batch-size", str(args.batch_size), "--out", str(out), "--device", "cpu", "--threads", str(threads)]
    if args.size:
        job += ["--size", str(args.size)]
    if args.data_dir:
        job += ["--data-dir", args.data_dir]
    if procs == 1:
        cmd = [sys.executable, "-m", "latentspace", *job]
    else:  # `--` ends torchrun's options: it would read --n as an abbreviation of its --nnodes
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={procs}", "--standalone",
               "-m", "latentspace", "--", *job]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    timed = records[1:] if len(records) > 1 else records
    images = sum(r["images_per_s"] * r["seconds"] for r in timed)
    return images / sum(r["seconds"] for r in timed), wall


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="mnist", help="dataset name (mnist needs its files; shapes is generated)")
    p.add_argument("--data-dir", default=None, help="folder holding the dataset files (e.g. ../shared/data/mnist)")
    p.add_argument("--size", type=int, default=None, help="resize images to SIZE x SIZE")
    p.add_argument("--n", type=int, default=10_000, help="images of each split")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128, help="the global batch, shared by the processes")
    p.add_argument("--procs", type=int, default=2, help="processes of the distributed run")
    p.add_argument("--threads", type=int, default=2, help="CPU threads in all, shared by the processes")
    p.add_argument("--repeats", type=int, default=1, help="alternating runs of each; medians are reported")
    args = p.parse_args(argv)

    each = max(1, args.threads // args.procs)
    print(f"{args.data}, {args.n} images, {args.epochs} epochs, global batch {args.batch_size}; "
          f"1 process x {args.threads} threads against {args.procs} processes x {each} thread(s); "
          f"{os.cpu_count()} CPUs")
    results: dict[int, list[tuple[float, float]]] = {1: [], args.procs: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            results[1].append(train(1, args.threads, Path(tmp) / f"one{r}", args))
            results[args.procs].append(train(args.procs, each, Path(tmp) / f"many{r}", args))
    rate = {k: statistics.median(x for x, _ in v) for k, v in results.items()}
    wall = {k: statistics.median(w for _, w in v) for k, v in results.items()}
    for k in results:
        label = f"{k} process{'es' if k > 1 else ''} x {args.threads if k == 1 else each} thread(s)"
        print(f"{label:28s} {rate[k]:10.0f} img/s training   wall {wall[k]:7.1f} s")
    print(f"speed-up ({args.procs} processes / 1): training {rate[args.procs] / rate[1]:.2f}x, "
          f"wall {wall[1] / wall[args.procs]:.2f}x")


if __name__ == "__main__":
    main()
