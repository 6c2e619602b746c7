"""Rebuild the pretrained zoo shipped in the package: ``python zoo/build.py [NAME ...]`` (default: every recipe).

Each model is trained from its recipe with fixed seeds through the ordinary CLI, in ``zoo/work/<name>/``
(ignored by git; a finished run is reused, an interrupted one resumes), then:

1. its weights are stored as float16 (half the bytes; every cached figure is then measured on exactly the
   shipped weights, since caches are keyed by the weights' checksum);
2. ``latentspace demo`` runs on it, which fills every cache the verbs, the report and the explorer read:
   codes, the GMM and latent-diffusion priors, the conditional prior, attribute directions, readers, the
   evaluator, on-manifold calibration and the PCA map;
3. the evaluator's and the priors' weights are stored as float16 too, and ``latentspace evaluate --refresh``
   measures ``evaluation.json`` again on exactly the shipped files, with the demo's protocol or the recipe's
   (MNIST: the IW bound with k = 1000 on 1,000 test images);
4. ``latentspace report`` fills the report's own caches (the realness table of random pairs, the 2-D maps);
5. the probe codes of the learning animation are stored as float16 too, and
6. the folder is copied into ``src/latentspace/pretrained/<name>/`` without the resume state and the files the
   recipe drops, with ``MODEL_CARD.md``, and ``pretrained/zoo.json`` is rewritten with every checksum.

Training CPU-minutes on the card are the sum of the epochs' ``seconds`` in metrics.jsonl, on the machine that
built it (2 cores for the shipped models).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "zoo" / "work"
BIN = Path(sys.executable).parent / "latentspace"
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from latentspace.train import zoo  # noqa: E402  (the repo's own package, not an installed one)
from latentspace.train.run import CONFIG, TRAINER_STATE, open_run  # noqa: E402
from latentspace.utils.files import read_json, read_safetensors, save_safetensors, write_json  # noqa: E402

NEVER_SHIPPED = (TRAINER_STATE, ".lock", "report.html")
# The shipped evaluations' protocol as `evaluate` flags: the demo's until it went to 500 diffusion steps and 250
# off-manifold images per set (cli.demo.DEMO_EVALUATION); the zoo keeps 1,000 steps, which cost it nothing to ship.
DEMO_FLAGS = ("--k", "16", "--iw-images", "200", "--samples", "1000", "--diffusion-steps", "1000")
BUDGET_BYTES = 30_000_000
# Caches left out of the smaller models to fit the budget: each is rebuilt in the user cache on first use by
# the verb that needs it (`locate` scores the test split, a few seconds). The conditional prior is shipped:
# fitting it took 15 of a pretrained demo's 29 s.
REBUILT_ON_USE = ("ood_calibration.safetensors",)


@dataclass(frozen=True)
class Recipe:
    data: str
    model: str
    train: tuple[str, ...]  # extra `latentspace train` flags
    describe: str  # the card's data column
    limits: str  # the card's known limits
    demo_epochs: int = 1  # what `demo --epochs` must see to reuse the trained run
    drop: tuple[str, ...] = ()  # caches too large to ship (rebuilt in the user cache on first use)
    evaluate: tuple[str, ...] = ()  # a second `latentspace evaluate` with these flags, replacing the demo's
    env: dict[str, str] = field(default_factory=dict)


RECIPES = {
    "faces": Recipe(
        "faces", "vae", ("--size", "64", "--latent-dim", "16", "--epochs", "5"), "faces 64 px, every factor",
        "Eye colour is lost in reconstructions (a 24-pixel detail; see issue 19's note); samples from N(0, I) are "
        "far from the data (FD against the floor): use the diffusion or GMM sampler.", demo_epochs=5),
    "mnist": Recipe(
        "mnist", "vae", ("--binarize", "--latent-dim", "32", "--epochs", "60"), "MNIST binarised, density grade",
        "Binarised pixels (Bernoulli likelihood): reconstructions are probabilities, not grey levels. The data is "
        "read from the user's MNIST files (LATENTSPACE_DATA or the download cache): they are not shipped.",
        drop=("codes_train.safetensors", "codes_test.safetensors", "map_pca.safetensors", *REBUILT_ON_USE),
        evaluate=("--k", "1000", "--iw-images", "1000", "--binarized", "--samples", "1000", "--diffusion-steps",
                  "1000")),
    "shapes": Recipe(
        "shapes", "beta-tcvae", ("--n", "20000", "--latent-dim", "10", "--width", "16", "--epochs", "5"),
        "shapes 64 px (dSprites-style), 20,000 images",
        "A short budget: axes follow position and scale more than shape and orientation.",
        drop=("codes_test.safetensors", *REBUILT_ON_USE)),
}


def sh(*args: str | Path, env: dict[str, str] | None = None) -> None:
    print("$", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], check=True, env={**os.environ, **(env or {})})


def run_dir(name: str, recipe: Recipe) -> Path:
    return WORK / name / f"{recipe.data}-{recipe.model}"


def is_halved(path: Path) -> bool:
    return path.is_file() and all(not t.is_floating_point() or t.dtype == torch.float16
                                  for t in read_safetensors(path)[0].values())


SECONDARY_WEIGHTS = ("evaluator/model.safetensors", "prior_diffusion.safetensors", "prior_conditional.safetensors")
# Halved just before packaging: the learning animation's probe codes (a 60-epoch run holds 3.9 MB of them) and a
# conditional prior fitted after the evaluation (it is in no figure of the card)
HALVED_LAST = ("snapshots.safetensors", "prior_conditional.safetensors")


def halve_weights(path: Path) -> None:
    """Store the weights as float16; the checksum is recomputed, so every cache is rebuilt on them."""
    tensors, meta = read_safetensors(path)
    meta.pop("latentspace.sha256", None)
    save_safetensors(path, {k: t.half() if t.is_floating_point() else t for k, t in tensors.items()}, meta)


def halve_last(run: Path) -> None:
    for rel in HALVED_LAST:
        if (run / rel).is_file() and not is_halved(run / rel):
            halve_weights(run / rel)


def build(name: str, recipe: Recipe, repackage: bool = False) -> None:
    run = run_dir(name, recipe)
    if repackage:  # the package step: a new card layout, nothing measured again, caches added since filled
        sh(BIN, "report", run, env=recipe.env)
        halve_last(run)
        package(name, recipe, run)
        return
    env = recipe.env
    weights = run / "model.safetensors"
    if not is_halved(weights):  # else trained and halved by an earlier build
        resume = ("--resume",) if (run / CONFIG).is_file() else ()
        sh(BIN, "train", "--data", recipe.data, "--model", recipe.model, *recipe.train, "--out", run, *resume, env=env)
        halve_weights(weights)
        (run / TRAINER_STATE).unlink(missing_ok=True)  # the resume state belongs to the float32 weights
    if not is_halved(run / SECONDARY_WEIGHTS[0]):  # else an earlier build filled and halved the caches
        sh(BIN, "demo", "--data", recipe.data, "--model", recipe.model, "--epochs", str(recipe.demo_epochs),
           "--out", run.parent, env=env)
        for rel in SECONDARY_WEIGHTS:  # the evaluator and the priors: measured again below, on these
            if (run / rel).is_file():
                halve_weights(run / rel)
    sh(BIN, "evaluate", run, *(recipe.evaluate or DEMO_FLAGS), "--refresh", env=env)
    sh(BIN, "report", run, env=env)  # the report's own caches (realness of 30 pairs, the 2-D maps) on these files
    halve_last(run)
    package(name, recipe, run)


def card_figures(name: str, recipe: Recipe, run: Path) -> dict:
    evaluation = read_json(run / "evaluation.json")["evaluation"]
    rec, gen = evaluation["reconstruction"], evaluation["generation"]
    samplers = {s["name"]: s for s in gen["samplers"]}
    best = min(gen["samplers"], key=lambda s: s["frechet"])
    opened = open_run(run)
    config, metrics = opened.config, opened.metrics()
    bernoulli = config["model"].get("likelihood") == "bernoulli"  # a density of binary pixels, in nats
    return {
        "data": recipe.describe, "objective": recipe.model, "latent_dim": config["model"]["latent_dim"],
        "epochs": len(metrics), "cpu_minutes": round(sum(m.get("seconds", 0) for m in metrics) / 60, 2),
        "mse": rec["mse"], "psnr": rec["psnr_db"], "ssim": rec.get("ssim"),
        "nll": (rec["binarized_iw_nll_nats"] or rec["iw_nll_nats"]) if bernoulli else None,
        "nll_binarized": rec["binarized_iw_nll_nats"] is not None, "nll_k": rec["iw_k"], "nll_n": rec["iw_n"],
        "fd": best["frechet"], "fd_sampler": best["name"], "fd_floor": gen["floor"]["frechet"],
        "precision": best["precision"], "recall": best["recall"], "mig": (evaluation.get("disentanglement") or {}).get("mig"),
        "samplers": {k: round(v["frechet"], 1) for k, v in samplers.items()},
        "command": f"latentspace train --data {recipe.data} --model {recipe.model} {' '.join(recipe.train)}",
        "limits": recipe.limits,
    }


def card_text(name: str, card: dict, files: dict[str, int]) -> str:
    rows = [("data", card["data"]), ("objective", card["objective"]), ("latent size", card["latent_dim"]),
            ("recipe", f"`{card['command']}` (seed 0), then `zoo/build.py {name}`"),
            ("training", f"{card['epochs']} epochs, {card['cpu_minutes']:.1f} CPU-minutes (2 cores)"),
            ("test MSE / PSNR / SSIM", f"{card['mse']:.5f} / {card['psnr']:.2f} dB / {card['ssim'] or float('nan'):.3f}"),
            ("IW NLL", f"{card['nll']:.2f} nats (k = {card['nll_k']}, {card['nll_n']} test images"
             f"{', dynamically binarised' if card['nll_binarized'] else ''})" if card["nll"]
             is not None else "not a density model of these pixels (Gaussian likelihood)"),
            ("best sampler", f"{card['fd_sampler']}: FD {card['fd']:.1f} (floor {card['fd_floor']:.1f}), precision "
             f"{card['precision']:.2f}, recall {card['recall']:.2f}"),
            ("FD per sampler", ", ".join(f"{k} {v}" for k, v in card["samplers"].items())),
            ("MIG", "n/a" if card["mig"] is None else f"{card['mig']:.3f}"),
            ("weights", "float16 safetensors; every figure here is measured on them"),
            ("known limits", card["limits"])]
    lines = [f"# zoo:{name}", "", "| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], "",
             "Every other figure is in `evaluation.json` (protocols included); `latentspace report zoo:" + name +
             "` shows them all.", "", "Files: " + ", ".join(f"`{p}` ({n / 1e6:.2f} MB)" for p, n in files.items()), ""]
    return "\n".join(lines)


def package(name: str, recipe: Recipe, run: Path) -> None:
    target = zoo.PACKAGE_DIR / name
    shutil.rmtree(target, ignore_errors=True)
    shipped = sorted(p for p in run.rglob("*") if p.is_file() and p.name not in NEVER_SHIPPED
                     and p.relative_to(run).as_posix() not in recipe.drop)
    for src in shipped:
        dst = target / src.relative_to(run)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    config = read_json(target / CONFIG)
    config["data"]["data_dir"] = None  # the builder's folder means nothing on a user's machine
    write_json(target / CONFIG, config)
    card = card_figures(name, recipe, run)
    sizes = {p.relative_to(target).as_posix(): p.stat().st_size for p in sorted(target.rglob("*")) if p.is_file()}
    (target / zoo.CARD).write_text(card_text(name, card, sizes), encoding="utf-8")
    index_path = zoo.PACKAGE_DIR / zoo.INDEX
    index = read_json(index_path) if index_path.is_file() else {"format": zoo.INDEX_FORMAT, "models": {}}
    files = {p.relative_to(target).as_posix(): zoo.file_sha256(p) for p in sorted(target.rglob("*")) if p.is_file()}
    index["models"][name] = {"card": card, "files": files}
    write_json(index_path, index)
    print(f"zoo:{name}: {sum(sizes.values()) / 1e6:.1f} MB")


def check_budget() -> None:
    total = sum(p.stat().st_size for p in zoo.PACKAGE_DIR.rglob("*") if p.is_file())
    print(f"the zoo: {total / 1e6:.1f} MB of {BUDGET_BYTES / 1e6:.0f}")
    if total > BUDGET_BYTES:
        sys.exit(f"the zoo is {total / 1e6:.1f} MB, over its {BUDGET_BYTES / 1e6:.0f} MB budget")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"recipes: {', '.join(RECIPES)} (default: all)")
    parser.add_argument("--repackage", action="store_true", help="only copy built runs into the package again")
    args = parser.parse_args()
    names = args.names or list(RECIPES)
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe {unknown[0]!r}; known: {', '.join(RECIPES)}")
    for name in names:
        build(name, RECIPES[name], args.repackage)
    check_budget()


if __name__ == "__main__":
    main()
