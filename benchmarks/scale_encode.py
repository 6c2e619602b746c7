"""Memory and speed at scale: image folders of 20,000 and 100,000 64x64 PNGs through cache, train and encode.

    python benchmarks/scale_encode.py [--sizes 20000,100000] [--workdir DIR] [--train-size N]

For each size a folder of generated cartoon faces (latentspace.data.faces, one PNG per face, written in
parallel) is made once under the work folder (kept between runs and reused). Then, each phase in its own
subprocess, so that each has its own peak resident memory (read from wait4's rusage):

    cache    build the folder's decoded cache (data.load_folder_report), as `latentspace train` would
    train    `latentspace train --data DIR --size 64 --epochs 1`, on the largest folder only (or --train-size)
    encode   `latentspace encode RUN DIR --out CODES/`: the streaming, sharded encode of every image

Printed per phase: images, seconds (of the whole subprocess, imports included), images/s and peak RSS beside the target (<= 1.5 GB in every phase), and
for the cache and encode phases the ratio of the largest folder's peak RSS to the smallest's, whose target is
about 1 (memory that does not grow with the folder). The folder cache lives in WORKDIR/cache, emptied at the
start of each run so the cache phase really builds it.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SIDE = 64
PER_TASK = 500  # faces rendered and written per worker task
RSS_TARGET_MB = 1536.0
RATIO_TARGET = 1.25  # "about the same for both sizes"
SMALLEST_FAIR = 10_000  # the default shard size: from here on, memory should stay flat
DONE = ".complete"  # hidden: the folder loader ignores it


@dataclass(frozen=True)
class Phase:
    name: str
    images: int
    seconds: float
    peak_rss_mb: float


def _write_faces(folder: str, start: int, count: int, seed: int) -> None:
    """Render faces start..start+count-1 and write them as PNGs (one worker task)."""
    import torch
    from PIL import Image

    from latentspace.data.faces import render_faces, sample_face_factors

    torch.set_num_threads(1)  # the pool is the parallelism
    factors = sample_face_factors(count, np.random.default_rng([seed, start]))
    images = render_faces(factors, size=SIDE).transpose(0, 2, 3, 1)
    for i, image in enumerate(images):
        Image.fromarray(image).save(Path(folder) / f"face{start + i:06d}.png", compress_level=1)


def make_folder(workdir: Path, n: int, workers: int) -> Path:
    """WORKDIR/faces-N with N face PNGs, generated once (a marker file says it is complete)."""
    folder = workdir / f"faces-{n}"
    if (folder / DONE).is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        jobs = [pool.submit(_write_faces, str(folder), s, min(PER_TASK, n - s), 0) for s in range(0, n, PER_TASK)]
        for job in jobs:
            job.result()
    (folder / DONE).write_text("")
    print(f"generated {n:,} PNGs in {folder} in {time.perf_counter() - started:.1f} s", flush=True)
    return folder


def run_phase(name: str, images: int, argv: list[str], env: dict[str, str], log: Path) -> Phase:
    """Run ``argv`` as a child process; its wall time and peak RSS (ru_maxrss, KiB on Linux)."""
    started = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: tell Popen so it does not wait again
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise SystemExit(f"phase {name!r} failed (exit {proc.returncode}); last output:\n{tail}")
    scale = 1024.0 if sys.platform != "darwin" else 1.0  # macOS reports bytes
    return Phase(name, images, seconds, usage.ru_maxrss * scale / 2**20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20000,100000", help="Comma-separated folder sizes.")
    parser.add_argument("--workdir", type=Path, default=None, help="Where folders, cache, run and codes go "
                        "(default: a new temporary folder).")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Processes generating PNGs.")
    parser.add_argument("--shard-size", type=int, default=10_000)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="latentspace-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "LATENTSPACE_CACHE": str(workdir / "cache")}
    shutil.rmtree(workdir / "cache", ignore_errors=True)
    cli = [sys.executable, "-c", "from latentspace.cli.main import main; main()"]  # the `latentspace` command
    folders = {n: make_folder(workdir, n, args.workers) for n in sizes}

    phases: list[Phase] = []
    for n, folder in folders.items():
        code = f"from latentspace.data.folder import load_folder_report as f; f({str(folder)!r}, size={SIDE})"
        phases.append(run_phase(f"cache {n:,}", n, [sys.executable, "-c", code], env, workdir / f"cache-{n}.log"))
    largest = sizes[-1]
    run_dir = workdir / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    train_images = round(largest * 0.9)  # the folder's seeded 90/10 split
    phases.append(run_phase(f"train {largest:,} (1 epoch)", train_images,
                            cli + ["train", "--data", str(folders[largest]), "--size", str(SIDE), "--epochs", "1",
                                   "--out", str(run_dir), "--device", "cpu"], env, workdir / "train.log"))
    for n, folder in folders.items():
        codes = workdir / f"codes-{n}"
        shutil.rmtree(codes, ignore_errors=True)
        phases.append(run_phase(f"encode {n:,}", n, cli + ["encode", str(run_dir), str(folder), "--out", str(codes),
                                                          "--shard-size", str(args.shard_size), "--device", "cpu"],
                                env, workdir / f"encode-{n}.log"))
    report(phases, sizes)
    print(f"work folder: {workdir} (logs: *.log)")


def report(phases: list[Phase], sizes: list[int]) -> None:
    print(f"\n{'phase':<24}{'images':>10}{'seconds':>10}{'images/s':>10}{'peak RSS':>12}   target")
    for p in phases:
        ok = "ok" if p.peak_rss_mb <= RSS_TARGET_MB else "OVER"
        print(f"{p.name:<24}{p.images:>10,}{p.seconds:>10.1f}{p.images / p.seconds:>10,.0f}"
              f"{p.peak_rss_mb:>9,.0f} MB   <= {RSS_TARGET_MB:,.0f} MB {ok}")
    if len(sizes) < 2:
        return
    small, large = f"{sizes[0]:,}", f"{sizes[-1]:,}"
    by_name = {p.name: p for p in phases}
    for kind in ("cache", "encode"):
        ratio = by_name[f"{kind} {large}"].peak_rss_mb / by_name[f"{kind} {small}"].peak_rss_mb
        ok = "ok" if ratio <= RATIO_TARGET else "GROWS"
        print(f"{kind}: peak RSS at {large} / at {small} images = {ratio:.2f}   target <= {RATIO_TARGET} {ok}")
    if sizes[0] < SMALLEST_FAIR:
        print(f"note: below {SMALLEST_FAIR:,} images a folder fills less than one encode shard (and below 1,000 "
              "less than one batch), so it needs less memory by construction; compare sizes above that")


if __name__ == "__main__":
    main()
