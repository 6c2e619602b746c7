"""Picture quality per training variant under one budget: how sharp and faithful each family and loss is.

Every variant trains through the command users type (`latentspace train --data faces --size 64 ...`, in a child
process, so the CLI's thread settings apply), then is measured on its test split:

- PSNR and SSIM of the reconstructions, and their high-frequency ratio (metrics.sharpness; 1 = as sharp as the data);
- the evaluator's accuracy on the reconstructions per factor, as a share of its accuracy on the real images;
- the interpolation table's middle frames (pixel cross-fade, lerp, slerp): evaluator confidence and manifold
  precision (improved precision, k = 3, in the evaluator's features);
- FD of latent-diffusion samples, beside the train-vs-test floor;
- the training command's CPU seconds (user + system of the child).

Data: the generated faces at 64 px (RGB), and with ``--folder`` also 400 grey faces written as PNG files, the size
of folder that users bring. Targets (issue 19) are printed beside the figures.

    python benchmarks/picture_quality.py --epochs 5 [--variants "default,default+gan0.1"] [--folder] [--pairs 30]
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from latentspace import api
from latentspace.api.common import cached_codes, open_model, run_evaluator
from latentspace.api.evaluate import EvaluateOptions
from latentspace.api.measures import evaluator_accuracy, generation
from latentspace.api.priors import sampler_for
from latentspace.data import load
from latentspace.latent.codes import decode_latents
from latentspace.metrics.sharpness import hf_ratio
from latentspace.metrics.structure import mean_ssim
from latentspace.utils.progress import NULL_PROGRESS

VARIANTS = {  # name -> `latentspace train` options; "default" is what a user gets with none
    "default": [],
    "old default": ["--arch", "plain", "--width", "16", "--batch-size", "128"],
    "default 8x8": ["--smallest-side", "8"],  # the dense head reads an 8x8 map instead of 4x4
    "default 16x16": ["--smallest-side", "16"],
    "plain16": ["--arch", "plain", "--width", "16"],
    "resnet16": ["--arch", "resnet", "--width", "16"],
    "resnet32": ["--arch", "resnet", "--width", "32"],
    "default+ssim": ["--ssim", "0.1"],
    "default+ffl": ["--ffl", "1"],
    "default beta0.1": ["--model", "beta-vae", "--beta", "0.1"],
    "plain16+ssim": ["--arch", "plain", "--width", "16", "--ssim", "0.1"],
    "plain16+ffl": ["--arch", "plain", "--width", "16", "--ffl", "1"],
    "default+gan0.1": ["--gan", "0.1"],
    "default+gan0.5": ["--gan", "0.5"],
    "default+gan0.5 start0": ["--gan", "0.5", "--gan-start", "0"],
}
TARGETS = {"psnr": 32.0, "ssim": 0.95, "accuracy_share": 0.95, "precision_gap": 0.3, "confidence_gap": 0.05,
           "fd_over_floor": 2.0}
FOLDER_SIZE = 400


def write_folder(root: Path, n: int = FOLDER_SIZE) -> Path:
    """``n`` grey 64 px faces as PNG files: a small folder like the ones users bring."""
    from PIL import Image

    folder = root / "faces_png"
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(load("faces", split=None, size=64, channels=1, n=n).images):
        Image.fromarray(image[0]).save(folder / f"face{i:04d}.png")
    return folder


def train(run_dir: Path, data: str, budget: list[str], options: list[str], threads: int) -> float:
    """Train one variant through the CLI; the child's CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [sys.executable, "-m", "latentspace", "train", "--data", data, "--size", "64", "--latent-dim", "16",
           "--out", str(run_dir), "--threads", str(threads), *budget, *options]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def psnr(mse: float) -> float:
    return float(10 * np.log10(1.0 / mse))


def measure(run_dir: Path, pairs: int, samples: int) -> dict[str, float | str]:
    run, model = open_model(run_dir, "cpu")
    train_set, _ = cached_codes(run, model, "train", NULL_PROGRESS)
    test, z_test = cached_codes(run, model, "test", NULL_PROGRESS)
    recon = decode_latents(model, z_test)
    real, rec = test.images.astype(np.float32) / 255, recon.astype(np.float32) / 255
    row: dict[str, float | str] = {"psnr": psnr(float(((real - rec) ** 2).mean())),
                                   "ssim": mean_ssim(recon, test.images), "hf": hf_ratio(recon, test.images)}
    evaluator = run_evaluator(run, model, train_set, test)
    if evaluator is None:
        return row
    heads = evaluator_accuracy(evaluator, test, recon)
    row["accuracy_share_worst"] = min(h.reconstructed / h.real for h in heads)
    row["accuracy_worst_head"] = min(heads, key=lambda h: h.reconstructed / h.real).head
    table = api.interpolation_table(run_dir, n_pairs=pairs)
    for p in table.summaries:
        row[f"conf_{p.path}"], row[f"prec_{p.path}"] = p.classifier_confidence, p.manifold_precision
    opts = EvaluateOptions(samples=samples, diffusion_steps=2000)
    diffusion = sampler_for(run, model, "diffusion", seed=opts.seed, diffusion=opts.diffusion(model.config.latent_dim))
    gen = generation(model, train_set, test, evaluator, [("latent diffusion", diffusion)], samples, 0)
    row["fd"], row["fd_floor"] = gen.samplers[0].frechet, gen.floor.frechet
    return row


def verdicts(row: dict) -> str:
    checks = [row["psnr"] >= TARGETS["psnr"], row["ssim"] >= TARGETS["ssim"]]
    if "conf_pixel" in row:
        latent_prec = max(row["prec_lerp"], row["prec_slerp"])
        latent_conf = max(row["conf_lerp"], row["conf_slerp"])
        checks += [row["accuracy_share_worst"] >= TARGETS["accuracy_share"],
                   latent_prec - row["prec_pixel"] >= TARGETS["precision_gap"],
                   latent_conf - row["conf_pixel"] >= TARGETS["confidence_gap"],
                   row["fd"] <= TARGETS["fd_over_floor"] * row["fd_floor"]]
    return f"{sum(checks)}/{len(checks)} targets"


def show(name: str, data: str, cpu_s: float, row: dict) -> None:
    cells = [f"{name:18s}", f"{data:7s}", f"cpu {cpu_s:6.0f} s", f"PSNR {row['psnr']:5.2f}", f"SSIM {row['ssim']:.3f}",
             f"HF {row['hf']:.2f}"]
    if "conf_pixel" in row:
        cells += [f"acc {row['accuracy_share_worst']:.2f} ({row['accuracy_worst_head']})",
                  "conf p/l/s " + "/".join(f"{row[f'conf_{p}']:.3f}" for p in ("pixel", "lerp", "slerp")),
                  "prec p/l/s " + "/".join(f"{row[f'prec_{p}']:.2f}" for p in ("pixel", "lerp", "slerp")),
                  f"FD {row['fd']:.2f} (floor {row['fd_floor']:.2f})"]
    print("  ".join(cells) + f"  [{verdicts(row)}]", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--epochs", default="5", help="epochs, or a comma-separated list for a quality curve")
    budget.add_argument("--minutes", help="minutes (--minutes of the CLI), or a comma-separated list")
    parser.add_argument("--variants", default="default,old default,default+ssim,default beta0.1",
                        help=f"comma-separated, of: {', '.join(VARIANTS)}")
    parser.add_argument("--folder", action="store_true", help=f"also a {FOLDER_SIZE}-image PNG folder")
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    names = [v.strip() for v in args.variants.split(",")]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    flag, values = ("--minutes", args.minutes) if args.minutes else ("--epochs", args.epochs)
    budgets = [[flag, v.strip()] for v in values.split(",")]
    print(f"targets: PSNR >= {TARGETS['psnr']} dB, SSIM >= {TARGETS['ssim']}, reconstruction accuracy >= "
          f"{TARGETS['accuracy_share']} of real on every factor, latent minus pixel precision >= "
          f"{TARGETS['precision_gap']} and confidence >= {TARGETS['confidence_gap']}, FD <= "
          f"{TARGETS['fd_over_floor']}x floor; budgets {flag} {values}, {args.threads} threads, "
          f"{os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        datasets = ["faces"] + ([str(write_folder(root))] if args.folder else [])
        for data in datasets:
            for budget in budgets:
                for name in names:
                    run_dir = root / f"{len(list(root.iterdir()))}"
                    cpu_s = train(run_dir, data, budget, VARIANTS[name], args.threads)
                    show(f"{name} {budget[1]}", "faces" if data == "faces" else "folder", cpu_s,
                         measure(run_dir, args.pairs, args.samples))


if __name__ == "__main__":
    main()
