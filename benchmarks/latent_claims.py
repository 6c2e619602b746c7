"""The numbers behind the latent-operations claims, measured on trained runs.

    python benchmarks/latent_claims.py --mnist-run runs/mnist-vae --faces-run runs/faces-vae \
        [--shapes-run runs/shapes-tcvae] [--json claims.json] [--pairs 100] [--samples 500] [--threads N]

MNIST is found as everywhere else ($LATENTSPACE_DATA, or --data-dir). A run path that does not exist yet is
trained first with the recipe below (into that path, as ``latentspace train`` would); a path holding an
unfinished run is an error (finish or resume it first). Evaluators are cached in ``<run>/evaluator/``.

- MNIST:  ModelConfig() (VAE, latent 16), TrainConfig(epochs=10): `latentspace train --data mnist --epochs 10`.
- faces:  VAE, 64 px RGB, latent 16, 5 epochs over the 20,000 training faces (about 5 min on one core).
- shapes: beta-TCVAE (beta 6), 32 px, latent 8, batch 128, peak lr 8e-3 after 20 warm-up steps, 5 epochs over
          the 50,000 training sprites (about 3 min on one core): tests/test_latent_acceptance.py's recipe, longer.

Printed (and written to --json):

1. Realness of interpolation paths (metrics.realness.pair_table) for MNIST and faces: for ``--pairs`` seeded
   random test pairs, the pixel cross-fade, latent lerp and latent slerp paths (10 frames); each score is
   averaged over the frames with t in [0.25, 0.75], then mean ± standard error over pairs. The evaluator is
   the run's cached one (metrics.evaluator_for_run), default head (MNIST: the digit; faces: hair colour).
2. The axis <-> factor table of the shapes run (metrics.disentanglement.axis_factor_table on posterior means
   of the test split): normalised MI per axis and factor, the best axis per factor and the MIG.
3. Evaluator confidence (max class probability) of ``--samples`` decoded prior samples N(0, I) against as
   many GMM samples (latent.samplers.GMMSampler, 10 full-covariance components fitted on the encoded MNIST
   training split), mean ± standard error.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentspace.cli.console import RichProgress
from latentspace.data import load
from latentspace.latent.codes import decode_latents, encode_images
from latentspace.latent.samplers import GMMSampler, PriorSampler
from latentspace.metrics.disentanglement import AxisFactorTable, axis_factor_table
from latentspace.metrics.evaluator import Evaluator, evaluator_for_run
from latentspace.metrics.realness import RealnessTable, pair_table
from latentspace.models import ModelConfig, build
from latentspace.train import TrainConfig, fit
from latentspace.train.run import Run, is_run_folder, open_run
from latentspace.utils.files import write_json


@dataclass(frozen=True)
class Recipe:
    """How to train a missing run: model, schedule and the data entry of its config.json."""

    model: ModelConfig
    train: TrainConfig
    data: dict[str, Any]


def recipes(data_dir: str | None) -> dict[str, Recipe]:
    return {
        "mnist": Recipe(ModelConfig(latent_dim=16), TrainConfig(epochs=10),
                        {"name": "mnist", "size": None, "channels": None, "data_dir": data_dir, "seed": 0, "n": None}),
        "faces": Recipe(ModelConfig(image_shape=(3, 64, 64), latent_dim=16), TrainConfig(epochs=5),
                        {"name": "faces", "size": 64, "channels": 3, "data_dir": None, "seed": 0, "n": None}),
        "shapes": Recipe(ModelConfig(image_shape=(1, 32, 32), latent_dim=8, objective="beta-tcvae", beta=6.0),
                         TrainConfig(epochs=5, batch_size=128, lr=8e-3, warmup_steps=20),
                         {"name": "shapes", "size": 32, "channels": 1, "data_dir": None, "seed": 0, "n": None}),
    }


def ensure_run(path: Path, recipe: Recipe) -> Run:
    """The finished run at ``path``, trained there with ``recipe`` first when the folder does not exist."""
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        d = recipe.data
        train, test = (load(d["name"], split=s, data_dir=d["data_dir"], size=d["size"], channels=d["channels"],
                            seed=d["seed"], n=d["n"]) for s in ("train", "test"))
        m = recipe.model
        print(f"training {path}: {m.objective}, {m.image_shape}, latent {m.latent_dim}, {recipe.train.epochs} epochs "
              f"over {len(train)} {d['name']} images", flush=True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe.train.seed)
            model = build(recipe.model)
        fit(model, train, test, recipe.train, path, "cpu", progress=RichProgress(), data_info=d)
    if not is_run_folder(path):
        raise ValueError(f"{path}: exists but is not a run folder; pass a run or a path that does not exist yet")
    run = open_run(path)
    done, planned = len(run.metrics()), run.train_config.epochs
    if done < planned or not (path / "model.safetensors").is_file():
        raise ValueError(f"{path}: unfinished run ({done} of {planned} epochs); let it finish or resume it")
    return run


def mean_se(values: np.ndarray) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v)))


def evaluator_of(run: Run) -> tuple[Evaluator, Any, Any]:
    train, test = run.dataset("train"), run.dataset("test")
    evaluator = evaluator_for_run(run.path, train, test, "cpu", RichProgress())
    if evaluator is None:
        raise ValueError(f"{run.path}: its data has no labels or discrete factors, so there is no evaluator")
    return evaluator, train, test


# -- 1. realness of interpolation paths ------------------------------------------------------------


def realness(run: Run, pairs: int, head: str | None) -> tuple[RealnessTable, dict[str, float] | None]:
    evaluator, train, test = evaluator_of(run)
    table = pair_table(run.model(), test, train.images, evaluator, n_pairs=pairs, steps=10, seed=0, head=head,
                       progress=RichProgress())
    return table, evaluator.test_accuracy_


def print_realness(name: str, run: Run, table: RealnessTable, accuracy: dict[str, float] | None) -> None:
    acc = "" if accuracy is None else f"; its test accuracy {accuracy.get(table.head, math.nan):.3f}"
    print(f"\n[{name}] realness of paths, {run.path}: {table.n_pairs} random test pairs, {table.steps} frames, "
          f"mean over t in [{table.middle[0]}, {table.middle[1]}], mean ± s.e. over pairs; "
          f"evaluator head {table.head!r}{acc}")
    widths = (6, 44, 32, 22, 26, 42)
    print("  ".join(h.ljust(w) for h, w in zip(table.HEADER, widths)))
    for row in table.rows():
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    by = {s.path: s for s in table.summaries}
    for score, better in (("classifier_confidence", max), ("manifold_precision", max), ("elbo", max),
                          ("nearest_distance", min)):
        values = {p: getattr(s, score) for p, s in by.items()}
        best = better(values, key=values.get)
        gap = getattr(by["lerp"], score) - getattr(by["pixel"], score)
        se = math.hypot(getattr(by["lerp"], f"{score}_se"), getattr(by["pixel"], f"{score}_se"))
        print(f"  {score}: best path {best}; lerp - pixel = {gap:+.4g} (≈ {gap / se:+.1f} unpaired s.e.)")


# -- 2. axis <-> factor table -------------------------------------------------------------------------


def axis_table(run: Run) -> AxisFactorTable:
    test = run.dataset("test")
    z = encode_images(run.model(), test.images)
    names = list(test.factor_names)
    return axis_factor_table(z, test.factors, names, [test.is_discrete(n) for n in names])


def print_axis_table(run: Run, table: AxisFactorTable) -> None:
    cfg = run.model_config
    print(f"\n[shapes] axis <-> factor table, {run.path} ({cfg.objective}, beta {cfg.beta:g}, latent "
          f"{cfg.latent_dim}, {cfg.image_shape[1]} px): normalised MI I(z_i; factor) / H(factor), test split")
    print("  ".join(c.ljust(11) for c in table.columns))
    for row in table.rows():
        print("  ".join(c.ljust(11) for c in row))
    for name, axis, score in zip(table.factor_names, table.best_axis, table.best_score):
        print(f"  {name:12s} best axis z{axis}  normalised MI {score:.3f}")
    print(f"  MIG {table.mig:.3f}")


# -- 3. prior vs GMM samples ------------------------------------------------------------------------


def sampler_confidence(run: Run, n: int) -> dict[str, Any]:
    evaluator, train, _ = evaluator_of(run)
    model = run.model()
    z_train = encode_images(model, train.images)
    gmm = GMMSampler(10, "full", seed=0).fit(z_train)
    out: dict[str, Any] = {"n": n, "components": 10, "covariance_type": "full"}
    samplers = (("prior", PriorSampler(model.config.latent_dim), 0), ("gmm", gmm, 1))
    for name, sampler, seed in samplers:
        images = decode_latents(model, sampler.sample(n, np.random.default_rng(seed)))
        mean, se = mean_se(evaluator.max_prob(images))
        out[name] = {"classifier_confidence": mean, "classifier_confidence_se": se}
    return out


def print_samplers(run: Run, result: dict[str, Any]) -> None:
    print(f"\n[mnist] evaluator confidence of decoded samples, {run.path}: {result['n']} each, mean ± s.e. of "
          "the max-class probability")
    for name, label in (("prior", "prior N(0, I)"), ("gmm", "GMM, 10 full-covariance components")):
        r = result[name]
        print(f"  {label:36s} {r['classifier_confidence']:.3f} ± {r['classifier_confidence_se']:.3f}")
    gap = result["gmm"]["classifier_confidence"] - result["prior"]["classifier_confidence"]
    se = math.hypot(result["gmm"]["classifier_confidence_se"], result["prior"]["classifier_confidence_se"])
    print(f"  GMM - prior = {gap:+.3f} (≈ {gap / se:+.1f} s.e.)")


# -- main -------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mnist-run", type=Path, required=True)
    p.add_argument("--faces-run", type=Path, required=True)
    p.add_argument("--shapes-run", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None, help="also write every number here")
    p.add_argument("--pairs", type=int, default=100)
    p.add_argument("--samples", type=int, default=500)
    p.add_argument("--faces-head", default=None, help="evaluator head for faces' confidence (default: the first)")
    p.add_argument("--data-dir", default=None, help="where the MNIST IDX files are (default: the usual search)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    recipe = recipes(args.data_dir)
    print(f"torch {torch.__version__}, cpu, threads {torch.get_num_threads()}")

    out: dict[str, Any] = {"realness": {}}
    runs = {"mnist": ensure_run(args.mnist_run, recipe["mnist"]), "faces": ensure_run(args.faces_run, recipe["faces"])}
    if args.shapes_run is not None:
        runs["shapes"] = ensure_run(args.shapes_run, recipe["shapes"])
    for name in ("mnist", "faces"):
        table, accuracy = realness(runs[name], args.pairs, args.faces_head if name == "faces" else None)
        print_realness(name, runs[name], table, accuracy)
        out["realness"][name] = {"run": str(runs[name].path), "evaluator_test_accuracy": accuracy, **table.to_dict()}
    if "shapes" in runs:
        table = axis_table(runs["shapes"])
        print_axis_table(runs["shapes"], table)
        out["axis_factor"] = {
            "run": str(runs["shapes"].path), "factor_names": list(table.factor_names),
            "normalized_mi": table.matrix.tolist(), "best_axis": list(table.best_axis),
            "best_score": list(table.best_score), "holds": list(table.holds), "mig": table.mig,
        }
    samples = sampler_confidence(runs["mnist"], args.samples)
    print_samplers(runs["mnist"], samples)
    out["samplers"] = {"run": str(runs["mnist"].path), **samples}
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json is not None:
        write_json(args.json, out)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
