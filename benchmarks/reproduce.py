"""Published numbers beside ours, each under a stated CPU budget, on the paper's data and binarisation (issue 20).

Every entry trains through the command users type (`latentspace train ... --minutes M`, a child process with
--threads), then `api.evaluate` measures it under one protocol:

- MNIST, dynamically binarised in training (--binarize) and scored as the papers do: the IW bound with k
  samples on a dynamically binarised copy of the test images (k = 5000 in the papers; --k, stated in the table);
- shapes (the dSprites-style generated set): MIG over the known factors;
- VQ-VAE on MNIST: test reconstruction MSE, and the Frechet distance of latent-diffusion samples (snapped
  onto the codebook) in the evaluator's features, beside the train-vs-test floor.

    python benchmarks/reproduce.py [--only iwae,vamp] [--scale 0.1] [--k 1000] [--iw-images 1000]

--scale multiplies every budget (0.1 for a smoke run; the targets hold only at 1). Wall minutes are the CLI's
--minutes on a quiet 2-core machine; CPU-minutes are the child's user + system time.
"""
from __future__ import annotations

import argparse
import math
import resource
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from latentspace import api
from latentspace.api.evaluate import EvaluateOptions


@dataclass(frozen=True)
class Entry:
    what: str
    data: str
    options: tuple[str, ...]
    minutes: float
    metric: str  # "binarized_nll", "mig" or "vq"
    paper: float | None
    source: str
    target: float | None  # ours must reach this (lower for NLL, higher for MIG), or None


ENTRIES = {
    # The papers' MLPs train for thousands of epochs; here the default conv net, and settings that fit the budget
    # (IWAE k=5 not 50: each sample is a decoder pass; K=100 pseudo-inputs not 500: each is an encoder pass).
    "iwae": Entry("IWAE k=5 (paper k=50), one layer, 32 units", "mnist",
                  ("--model", "iwae", "--k", "5", "--latent-dim", "32", "--binarize"), 30, "binarized_nll",
                  84.78, "Burda et al. 2016, Table 1", 84.8),
    "vamp": Entry("VampPrior K=100 (paper 500), 32 units", "mnist",
                  ("--model", "vamp", "--pseudo-inputs", "100", "--latent-dim", "32", "--binarize"), 30,
                  "binarized_nll", 85.57, "Tomczak & Welling 2018, Table 2", 85.6),
    "hvae": Entry("two stochastic layers, 32 + 32 units", "mnist",
                  ("--model", "hvae", "--layers", "2", "--latent-dim", "64", "--binarize"), 60, "binarized_nll",
                  82.90, "Burda et al. 2016, IWAE two layers", 82.9),
    "beta-tcvae": Entry("beta-TCVAE, beta 6, 10 units, shapes", "shapes",
                        ("--model", "beta-tcvae", "--beta", "6", "--latent-dim", "10"), 15, "mig", None,
                        "Locatello et al. 2019, dSprites spread over seeds", 0.35),
    "factor-vae": Entry("FactorVAE, gamma 35, 10 units, shapes", "shapes",
                        ("--model", "factor-vae", "--beta", "35", "--latent-dim", "10"), 15, "mig", None,
                        "Locatello et al. 2019, dSprites spread over seeds", 0.35),
    "vq-vae": Entry("VQ-VAE, 64 axes in groups of 4, 512 entries", "mnist",
                    ("--model", "vq-vae", "--latent-dim", "64"), 15, "vq", None, "no MNIST figure published", None),
}


def train(run_dir: Path, entry: Entry, minutes: float, threads: int) -> float:
    """Train one entry through the CLI; the child's CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [sys.executable, "-m", "latentspace", "train", "--data", entry.data, "--out", str(run_dir),
           "--minutes", f"{minutes:g}", "--threads", str(threads), *entry.options]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(run_dir: Path, entry: Entry, k: int, iw_images: int, samples: int) -> dict[str, float]:
    binarized = entry.metric == "binarized_nll"
    ev = api.evaluate(run_dir, EvaluateOptions(iw_k=k, iw_n=iw_images, binarized=binarized, samples=samples))
    rec = ev.reconstruction
    row = {"mse": rec.mse, "elbo": rec.elbo_nats}
    if binarized:
        row["ours"] = rec.binarized_iw_nll_nats
    if entry.metric == "mig":
        row["ours"] = ev.disentanglement.mig if ev.disentanglement is not None else math.nan
    if entry.metric == "vq":
        diffusion = next(s for s in ev.generation.samplers if s.name == "latent diffusion")
        row["ours"], row["fd"], row["fd_floor"] = rec.mse, diffusion.frechet, ev.generation.floor.frechet
    return row


def verdict(entry: Entry, ours: float) -> str:
    if entry.target is None:
        return "no target"
    met = ours <= entry.target if entry.metric == "binarized_nll" else ours >= entry.target
    return f"{'met' if met else 'MISSED'} (target {entry.target:g})"


def show(name: str, entry: Entry, minutes: float, cpu_s: float, row: dict, k: int) -> None:
    unit = {"binarized_nll": f"IW NLL k={k}, nats", "mig": "MIG", "vq": "test MSE"}[entry.metric]
    paper = "—" if entry.paper is None else f"{entry.paper:.2f}"
    extra = f"  FD {row['fd']:.2f} (floor {row['fd_floor']:.2f})" if "fd" in row else ""
    print(f"{name:11s} {entry.what:46s} {unit:20s} ours {row['ours']:8.3f}  paper {paper:>6s} ({entry.source})  "
          f"{minutes:g} wall-min, {cpu_s / 60:.1f} CPU-min  ELBO {row['elbo']:.2f}{extra}  [{verdict(entry, row['ours'])}]",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(ENTRIES), help=f"comma-separated, of: {', '.join(ENTRIES)}")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every budget (0.1: a smoke run)")
    parser.add_argument("--k", type=int, default=1000, help="importance samples of the IW bound (papers: 5000)")
    parser.add_argument("--iw-images", type=int, default=1000, help="test images in the IW bound")
    parser.add_argument("--samples", type=int, default=2000, help="samples for the FD")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="keep the run folders here")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(ENTRIES))
    if unknown:
        parser.error(f"--only: unknown entries {unknown}; choose from {', '.join(ENTRIES)}")
    root = args.keep or Path(tempfile.mkdtemp(prefix="reproduce-"))
    print(f"budgets x{args.scale:g}, {args.threads} threads, IW k={args.k} on {args.iw_images} test images; runs in {root}")
    for name in names:
        entry = ENTRIES[name]
        minutes = entry.minutes * args.scale
        cpu_s = train(root / name, entry, minutes, args.threads)
        show(name, entry, minutes, cpu_s, measure(root / name, entry, args.k, args.iw_images, args.samples), args.k)


if __name__ == "__main__":
    main()
