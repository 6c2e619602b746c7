"""Does the model know its own images? AUROC of every on-manifold score, an MNIST VAE's test split against five
other sets: the evidence behind `latentspace ood` and the default score of `latentspace locate`.

    python benchmarks/ood.py [--run runs/ood-mnist-vae] [--epochs 10] [--k 64] [--n 2000] [--threads 2] \
        [--json ood.json]

The run: an existing finished run folder, or a path that does not exist yet, trained there first with the
README's recipe (`latentspace train --data mnist --epochs 10`: ModelConfig(latent_dim=16), TrainConfig(epochs=10);
``--epochs`` shortens it). MNIST is found as everywhere else ($LATENTSPACE_DATA, or --data-dir).

The other sets, ``--n`` images each (seeded): generated shapes and cartoon faces rendered at 28 px grey
(``data.load(..., size=28, channels=1)``), uniform noise, MNIST test digits flipped upside down, and MNIST
test digits with 20% salt-and-pepper noise (each pixel, with probability 0.2, set to 0 or 255 at even odds).
The real side is the whole MNIST test split (10,000), scored once and cached in the run
(``ood_calibration.safetensors``). Scores, higher = more off the manifold (metrics.ood): IWAE NLL with ``--k``
samples, complexity-corrected NLL (minus the PNG length), -log p(code) under the run's 10-component GMM,
reconstruction MSE, framing (the image moments' Mahalanobis distance from the training images'), and
``combined`` (Fisher's combination of the last four's tail probabilities). Also printed: ``combined`` without
framing, the generative model's own scores alone.

Printed: AUROC per score and set, each score's worst set, the target (the default score at least 0.95 on
every set, and not raw likelihood alone if raw likelihood fails a set), which score has the best worst case, and
how many images of each set the default calls off at `locate`'s threshold. The baseline is raw likelihood
(``nll``), measured in the same run on the same images; for the flipped digits, a supervised classifier that
has seen them (flipped_ceiling) shows how much the pixels tell.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentspace import api
from latentspace.api.calibration import LocateOptions, calibration, score_images
from latentspace.api.ood import constructed_sets
from latentspace.cli.console import RichProgress
from latentspace.data import load
from latentspace.metrics.ood import ALL_SCORES, COMBINED_FROM, SCORE_NAMES, combined_score
from latentspace.metrics.separation import auroc
from latentspace.models import ModelConfig, build
from latentspace.train import TrainConfig, fit
from latentspace.train.run import Run, is_run_folder, open_run
from latentspace.utils.files import write_json

TARGET = 0.95
SETS = ("shapes", "faces", "noise", "flipped", "salt-pepper")


def ensure_run(path: Path, epochs: int, data_dir: str | None) -> Run:
    """The finished run at ``path``, trained there first (the README's MNIST recipe) when it does not exist."""
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        data = {"name": "mnist", "size": None, "channels": None, "data_dir": data_dir, "seed": 0, "n": None}
        train, test = (load("mnist", split=s, data_dir=data_dir) for s in ("train", "test"))
        config, schedule = ModelConfig(latent_dim=16), TrainConfig(epochs=epochs)
        print(f"training {path}: vae, latent 16, {epochs} epochs over {len(train)} MNIST images", flush=True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(schedule.seed)
            model = build(config)
        fit(model, train, test, schedule, path, "cpu", progress=RichProgress(), data_info=data)
    if not is_run_folder(path):
        raise ValueError(f"{path}: exists but is not a run folder; pass a run or a path that does not exist yet")
    run = open_run(path)
    done, planned = len(run.metrics()), run.train_config.epochs
    if done < planned:
        raise ValueError(f"{path}: unfinished run ({done} of {planned} epochs); let it finish or resume it")
    return run


def other_sets(run: Run, n: int, seed: int) -> dict[str, np.ndarray]:
    """The five other sets of uint8 (n, 1, 28, 28) images (see the module docstring); the last three are
    `evaluate`'s constructed sets (api.ood.constructed_sets) of the first n test digits."""
    made = constructed_sets(run.dataset("test").images[:n], seed)
    return {
        "shapes": load("shapes", split="test", size=28, channels=1, seed=seed, n=n).images,
        "faces": load("faces", split="test", size=28, channels=1, seed=seed, n=n).images,
        "noise": made["uniform noise"],
        "flipped": made["flipped upside down"],
        "salt-pepper": made["20% salt and pepper"],
    }


def flipped_ceiling(run: Run, n: int, seed: int) -> float:
    """AUROC of a supervised reference that has *seen* flipped digits: a one-hidden-layer MLP (sklearn, 256
    units, 30 epochs) trained on 10,000 training digits upright against the same flipped, scored on the first
    ``n`` test digits against their flips. Not a score latentspace offers (it needs the other set to train): it
    shows whether the pixels carry the difference at all."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    def flat(images: np.ndarray, flip: bool) -> np.ndarray:
        return (images[:, :, ::-1] if flip else images).reshape(len(images), -1) / 255.0

    train, test = run.dataset("train").images[:10_000], run.dataset("test").images[:n]
    x = np.concatenate([flat(train, False), flat(train, True)])
    y = np.repeat([0, 1], len(train))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier((256,), max_iter=30, random_state=seed).fit(x, y)
    return auroc(clf.predict_proba(flat(test, False))[:, 1], clf.predict_proba(flat(test, True))[:, 1])


def model_only(run: Run, sets: dict[str, np.ndarray], options: LocateOptions) -> dict[str, float]:
    """AUROC per set of ``combined`` without ``framing``: Fisher's combination of the generative model's own
    scores only (complexity, code density, reconstruction), to show what the framing score adds."""
    model = run.model()
    names = tuple(s for s in COMBINED_FROM if s != "framing")
    reference = calibration(run, model, options).test.table(names)
    real = combined_score(reference, reference, leave_one_out=True)
    return {name: auroc(real, combined_score(score_images(run, model, images, options).table(names), reference))
            for name, images in sets.items()}


def print_table(auroc: dict[str, dict[str, float]], default: str) -> str:
    """The AUROC table (score x set) with each score's worst set; returns the score with the best worst case."""
    width = max(len(SCORE_NAMES[s]) for s in ALL_SCORES) + 2
    print(f"\nAUROC, MNIST test split against each set (target for the default: >= {TARGET} on every set)")
    print(" " * width + "".join(f"{s:>13}" for s in SETS) + f"{'worst':>10}")
    for score in ALL_SCORES:
        row = auroc[score]
        mark = "  <- default" if score == default else ""
        print(f"{SCORE_NAMES[score]:<{width}}" + "".join(f"{row[s]:>13.3f}" for s in SETS)
              + f"{min(row.values()):>10.3f}{mark}")
    return max(ALL_SCORES, key=lambda s: min(auroc[s].values()))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, default=Path("runs/ood-mnist-vae"), help="run folder (trained if missing)")
    p.add_argument("--epochs", type=int, default=10, help="epochs when the run is trained here")
    p.add_argument("--k", type=int, default=64, help="importance samples of the IWAE NLL")
    p.add_argument("--n", type=int, default=2000, help="images per other set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--data-dir", default=None, help="where the MNIST IDX files are (default: the usual search)")
    p.add_argument("--json", type=Path, default=None, help="also write every number here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, cpu, threads {torch.get_num_threads()}, os.cpu_count {os.cpu_count()}, "
          f"load average at start {os.getloadavg()[0]:.2f}")
    started = time.perf_counter()
    run = ensure_run(args.run, args.epochs, args.data_dir)
    trained = time.perf_counter()
    options = LocateOptions(k=args.k, seed=args.seed)
    last = run.metrics()[-1]
    print(f"run {run.path}: {run.model_config.objective}, latent {run.model_config.latent_dim}, "
          f"{len(run.metrics())} epochs, test ELBO {last['test_elbo']:.2f} nats")
    sets = other_sets(run, args.n, args.seed)
    results = {}
    for name, images in sets.items():
        t = time.perf_counter()
        results[name] = api.ood(run.path, images, options, progress=RichProgress())
        print(f"{name}: {len(images)} images scored in {time.perf_counter() - t:.1f} s", flush=True)
    auroc = {s: {name: r.separations[s].auroc for name, r in results.items()} for s in ALL_SCORES}
    best = print_table(auroc, api.DEFAULT_SCORE)

    default_worst = min(auroc[api.DEFAULT_SCORE].values())
    nll_fails = [s for s in SETS if auroc["nll"][s] < TARGET]
    met = default_worst >= TARGET and not (nll_fails and api.DEFAULT_SCORE == "nll")
    missed = [s for s in SETS if auroc[api.DEFAULT_SCORE][s] < TARGET]
    print(f"\ndefault score: {api.DEFAULT_SCORE}; worst AUROC {default_worst:.3f} -> target "
          f"{'met' if met else 'MISSED'}" + (f" on {', '.join(missed)}" if missed else ""))
    print(f"raw likelihood (nll) below {TARGET} on: {', '.join(nll_fails) or 'none'}")
    print(f"best worst-case AUROC: {best} ({min(auroc[best].values()):.3f})")
    d = results["flipped"].separations[api.DEFAULT_SCORE]
    print(f"default on flipped: AUPR {d.aupr:.3f}, FPR at 95% TPR {d.fpr_at_tpr:.3f}")
    print(f"called off by the default at the test split's {options.percentile:g}th percentile (as `locate` judges): "
          + ", ".join(f"{name} {r.called_off[api.DEFAULT_SCORE]:.1%}" for name, r in results.items()))
    own = model_only(run, sets, options)
    print("combined without framing (the model's own scores only): "
          + ", ".join(f"{name} {value:.3f}" for name, value in own.items()) + f"; worst {min(own.values()):.3f}")
    t = time.perf_counter()
    ceiling = flipped_ceiling(run, args.n, args.seed)
    print(f"reference, not a latentspace score: a supervised MLP trained on upright vs flipped training digits "
          f"separates the flipped set at AUROC {ceiling:.3f} ({time.perf_counter() - t:.0f} s)")
    print(f"\nscoring {time.perf_counter() - trained:.0f} s (training {trained - started:.0f} s); load average at end "
          f"{os.getloadavg()[0]:.2f}")
    if args.json is not None:
        out: dict[str, Any] = {"run": str(run.path), "epochs": len(run.metrics()), "k": args.k, "n": args.n,
                               "threads": args.threads, "default": api.DEFAULT_SCORE, "target": TARGET,
                               "flipped_supervised_auroc": ceiling, "combined_without_framing_auroc": own,
                               "sets": {name: r.to_dict() for name, r in results.items()}}
        write_json(args.json, out)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
