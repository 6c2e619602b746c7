"""`latentspace sweep`: a grid of `train` options x seeds, trained and evaluated under one folder, resumable.

Every run is an ordinary `latentspace train` in a child process (its own --threads), so a sweep's run folder is
like any other. Run again after any stop (Ctrl-C, kill -9 of the process group, a reboot), the sweep skips the
finished runs, continues the cut ones with `train --resume` (exact), and starts the rest: no run is trained twice.
"""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from latentspace.api import sweep as plan_api
from latentspace.cli.console import console

out = Console()

GridOpt = Annotated[str | None, typer.Option(help="Comma-separated values to sweep.")]


def sweep_command(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder of the sweep: one run folder per combination and seed.")],
    data: Annotated[str, typer.Option("--data", help="Dataset name or image folder, as for train.")] = "mnist",
    model: Annotated[str | None, typer.Option("--model", help="Families to sweep, comma-separated (e.g. beta-vae,beta-tcvae).")] = None,
    beta: Annotated[str | None, typer.Option("--beta", help="Values of --beta, comma-separated (e.g. 1,4,8).")] = None,
    latent_dim: Annotated[str | None, typer.Option("--latent-dim", help="Values of --latent-dim, comma-separated.")] = None,
    lr: Annotated[str | None, typer.Option("--lr", help="Values of --lr, comma-separated.")] = None,
    grid: Annotated[list[str] | None, typer.Option("--grid", help="Any other train flag and its values, as "
                                                   "FLAG=V1,V2 (e.g. --grid k=1,5,50); repeatable.")] = None,
    seeds: Annotated[int, typer.Option("--seeds", help="Seeds per combination (0, 1, ...).")] = 1,
    fixed: Annotated[list[str] | None, typer.Option("--train", help="A train option every run gets, as FLAG=VALUE "
                                                    "(e.g. --train epochs=5 --train n=2000); repeatable.")] = None,
    jobs: Annotated[int, typer.Option("--jobs", help="Runs trained at once, each in its own process.")] = 1,
    threads: Annotated[int | None, typer.Option("--threads", help="torch threads per run (default: the CPUs "
                                                "shared out over --jobs).")] = None,
    evaluate: Annotated[bool, typer.Option("--evaluate/--no-evaluate", help="Evaluate every run (cached in its "
                                           "folder) and end with the compare table.")] = True,
    eval_k: Annotated[int | None, typer.Option("--eval-k", help="Importance samples of the IW bound in the "
                                               "evaluation (default as evaluate).")] = None,
    iw_images: Annotated[int | None, typer.Option("--iw-images", help="Test images in the IW bound.")] = None,
    binarized: Annotated[bool | None, typer.Option("--binarized/--no-binarized", help="Also the IW bound on "
                                                   "binarised test images.")] = None,
    samples: Annotated[int | None, typer.Option("--samples", help="Images per sampler for FD.")] = None,
    diffusion_steps: Annotated[int | None, typer.Option("--diffusion-steps", help="Latent diffusion training "
                                                        "steps.")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    backend: Annotated[str, typer.Option("--backend", help="local (child processes here, --jobs at a time) or ray "
                                         "(one Ray task per run; pip install 'latentspace[ray]').")] = "local",
    ray_address: Annotated[str | None, typer.Option("--ray-address", help="Ray cluster to use ('auto' or "
                                                    "host:port; default: $RAY_ADDRESS, else a local instance).")] = None,
) -> None:
    """Train every combination of the swept options x seeds; a killed sweep continues where it stopped."""
    if jobs < 1:
        raise ValueError(f"--jobs {jobs}: expected at least 1")
    if backend not in BACKENDS:
        raise ValueError(f"--backend {backend}: expected one of {', '.join(BACKENDS)}")
    spec = {"--model": model, "--beta": beta, "--latent-dim": latent_dim, "--lr": lr, **_pairs(grid, "--grid", True)}
    swept = plan_api.parse_grid(spec)
    fixed_args = [a for flag, value in _pairs(fixed, "--train", False).items() for a in (flag, value)]
    # One data seed for every run: seeds vary the model, never which images it is trained and measured on.
    fixed_args = ["--data", data, "--data-seed", "0", "--device", device, *fixed_args]
    plan_api.claim_folder(out_dir, swept, fixed_args, seeds)
    runs = plan_api.plan(swept, seeds)
    per_job = threads or max(1, (os.cpu_count() or 1) // jobs)
    logs = out_dir / "logs"
    logs.mkdir(exist_ok=True)
    before = {r.name: plan_api.status(out_dir / r.name) for r in runs}
    todo = [r for r in runs if before[r.name] != "done"]
    out.print(f"sweep of {len(runs)} runs in {out_dir}: {len(runs) - len(todo)} done, "
              f"{sum(before[r.name] == 'partial' for r in runs)} to continue, "
              f"{sum(before[r.name] == 'todo' for r in runs)} to start; {jobs} at a time, {per_job} threads each",
              markup=False, highlight=False, soft_wrap=True)
    commands = [(r.name, _train_args(out_dir, r, before[r.name], fixed_args, per_job)) for r in todo]
    codes = BACKENDS[backend](commands, logs, jobs, per_job, ray_address)
    failures = [name for (name, _), code in zip(commands, codes) if code != 0]
    if failures:
        raise ValueError(f"{len(failures)} of {len(todo)} runs failed: {failures[0]} (logs in {logs})")
    out.print(_status_table(out_dir, runs, before))
    if evaluate:
        from latentspace.cli import compare  # the compare verb renders the table and the page

        options = compare.protocol(eval_k, iw_images, binarized, samples, diffusion_steps)
        # mean ± sd over each combination's seeds
        compare.compare_runs([out_dir / r.name for r in runs], out_dir / "compare.html", device,
                             groups=[r.group for r in runs], options=options)


def _pairs(items: list[str] | None, option: str, many: bool) -> dict[str, str]:
    """['k=1,5'] -> {'--k': '1,5'}; a malformed item is refused naming the option."""
    pairs: dict[str, str] = {}
    for item in items or []:
        flag, sep, value = item.partition("=")
        if not sep or not flag.strip() or not value.strip() or (not many and "," in value):
            expected = "FLAG=V1,V2" if many else "FLAG=VALUE"
            raise ValueError(f"{option} {item!r}: expected {expected}")
        pairs["--" + flag.strip().lstrip("-")] = value.strip()
    return pairs


def _train_args(out_dir: Path, run: plan_api.SweepRun, state: str, fixed: list[str], threads: int) -> list[str]:
    """`latentspace` arguments that train (or continue) one run."""
    args = ["train", "--out", str(out_dir.resolve() / run.name), "--threads", str(threads)]
    return args + (["--resume"] if state == "partial" else [*fixed, *run.train_args()])


def run_child(args: list[str], log_path: str) -> int:
    """`python -m latentspace ARGS` with this interpreter (on a Ray worker: the worker's), output appended to the
    log; the exit code."""
    with open(log_path, "a") as log:
        return subprocess.run([sys.executable, "-m", "latentspace", *args], stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL).returncode


def _local(commands, logs: Path, jobs: int, threads: int, address: str | None) -> list[int]:
    """Child processes on this machine, ``jobs`` at a time."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda c: run_child(c[1], str(logs / f"{c[0]}.log")), commands))


def _ray(commands, logs: Path, jobs: int, threads: int, address: str | None) -> list[int]:
    """One Ray task per run, each reserving ``threads`` CPUs of the cluster (the folder must be on storage every
    node sees). Connects to ``address`` ('auto', host:port), or starts a local instance when there is none."""
    try:
        import ray
    except ImportError:
        raise ValueError("--backend ray needs Ray: pip install 'latentspace[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    task = ray.remote(num_cpus=threads)(run_child)
    return ray.get([task.remote(args, str((logs / f"{name}.log").resolve())) for name, args in commands])


BACKENDS = {"local": _local, "ray": _ray}  # --backend: where the runs are trained


def _status_table(out_dir: Path, runs: list[plan_api.SweepRun], before: dict[str, str]) -> Table:
    table = Table(title="sweep")
    for column in ("run", "before", "now"):
        table.add_column(column)
    for r in runs:
        table.add_row(r.name, before[r.name], plan_api.status(out_dir / r.name))
    return table


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep_command)
