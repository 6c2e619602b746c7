"""Pixels versus words, measured: how well `describe` reads attributes off the codes, and how well `draw` makes
images that fit a description, on trained runs (the demo's 64 px faces, the README's MNIST run).

    python benchmarks/describe_draw.py RUN [RUN...] [--n 256] [--descriptions 12] [--guidance 0,1,2,4]
                                       [--threads 2] [--plot guidance.png] [--json out.json]

Everything is judged by the run's evaluator classifier (trained on the real images, cached in the run), never
by the readers themselves. Per run:

- describe: each reader's accuracy on the test codes beside the evaluator's on the real test images, and their
  ratio (target >= 0.95 on every attribute the evaluator tells above chance by two standard errors);
- draw, single terms: for every value of every discrete attribute, --n images drawn from that one term; the
  share in which the evaluator finds the term (target >= 0.95 on faces, >= 0.97 for MNIST classes). The
  ceiling beside it: the evaluator's own recall of that value on real test images;
- draw, three terms: --descriptions descriptions made of three attributes of random test images (so that real
  images with all three exist); the share of drawn images with all three (target >= 0.85), and the ceiling;
- diversity: per single term, improved recall (k = 3; target >= 0.7 at the default guidance) and the Frechet
  distance of the drawn images against as many real test images with that term, in the evaluator's features;
  the floor beside them is the same figures for as many real *train* images with the term;
- the directions baseline (prior samples pushed along the attribute directions) beside the conditional prior,
  and the guidance sweep, as a table and, with --plot, a picture;
- cost: the conditional prior's fit on (at most) 20,000 training codes in CPU-minutes (target <= 2) and the
  median wall time of drawing and decoding 64 images (target < 1 s).

Run it on a quiet machine; --threads pins torch's threads (2 for the CPU figures).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from latentspace import api
from latentspace.api.drawing import conditional_config
from latentspace.data.vocabulary import Vocabulary
from latentspace.latent.conditional import DEFAULT_GUIDANCE, ConditionalPrior
from latentspace.metrics.evaluator import Evaluator
from latentspace.metrics.fidelity import precision_recall
from latentspace.metrics.frechet import frechet_distance
from latentspace.utils.files import write_json
from latentspace.utils.progress import NULL_PROGRESS

FIT_CODES = 20_000
MIN_REAL = 20  # a term needs this many real test images for its diversity figures


@dataclass(frozen=True)
class Described:
    attribute: str
    reader: float
    evaluator: float
    chance: float
    evaluator_tells: bool
    described: bool  # whether describe says it (its reader beats chance on the test codes)

    @property
    def ratio(self) -> float:
        return self.reader / self.evaluator


@dataclass(frozen=True)
class Drawn:
    """One description drawn under one setting: the share of drawn images with every term, the same share on
    matching real test images (the evaluator's ceiling), and for single terms recall / FD and their floors."""

    setting: str
    description: str
    terms: int
    share: float
    ceiling: float
    recall: float = float("nan")
    frechet: float = float("nan")
    recall_floor: float = float("nan")
    frechet_floor: float = float("nan")


def evaluator_can_tell(accuracy: float, chance: float, n: int) -> bool:
    return accuracy > chance + 2 * np.sqrt(max(chance * (1 - chance), 1e-12) / n)


def describe_rows(readers, vocab: Vocabulary, evaluator: Evaluator, test, z_test: np.ndarray) -> list[Described]:
    heads = {h.name for h in evaluator.config.heads}
    y = vocab.targets(test)
    rows = []
    for r in readers:
        j = vocab.names.index(r.attribute.name)
        if r.attribute.name not in heads:
            continue
        keep = np.isfinite(y[:, j])
        truth = y[keep, j].astype(np.int64)
        read = r.predict(z_test[keep])[0]  # what the reader says, told or not (describe drops untold ones)
        judged = evaluator.predict_proba(test.images[keep], r.attribute.name).argmax(1)
        chance = float(np.bincount(truth).max() / len(truth))
        acc = float(np.mean(judged == truth))
        rows.append(Described(r.attribute.name, float(np.mean(read == truth)), acc, chance,
                              bool(evaluator_can_tell(acc, chance, len(truth))), bool(r.told)))
    return rows


def has_all(evaluator: Evaluator, images: np.ndarray, terms) -> np.ndarray:
    ok = np.ones(len(images), bool)
    for name, value in terms:
        ok &= evaluator.predict_proba(images, name).argmax(1) == int(value)
    return ok


def matching(y: np.ndarray, vocab: Vocabulary, terms) -> np.ndarray:
    keep = np.ones(len(y), bool)
    for name, value in terms:
        keep &= y[:, vocab.names.index(name)] == value
    return keep


def draw_row(run, model, train, evaluator, vocab, setting, method, guidance, terms, n, real, floor, seed) -> Drawn:
    description = ", ".join(vocab.attributes[vocab.names.index(a)].phrase(v) for a, v in terms)
    drawn = api.draw_codes(run, model, description, n=n, guidance=guidance, method=method, seed=seed, train=train)
    share = float(has_all(evaluator, drawn.images, terms).mean())
    ceiling = float(has_all(evaluator, real, terms).mean())
    if len(terms) > 1 or len(real) < MIN_REAL:
        return Drawn(setting, description, len(terms), share, ceiling)
    m = min(len(real), len(floor), n)
    f_real, f_drawn, f_floor = (evaluator.features(x[:m]) for x in (real, drawn.images, floor))
    return Drawn(setting, description, 1, share, ceiling, precision_recall(f_real, f_drawn, 3).recall,
                 frechet_distance(f_real, f_drawn), precision_recall(f_real, f_floor, 3).recall,
                 frechet_distance(f_real, f_floor))


def term_sets(vocab: Vocabulary, heads: set[str], y_test: np.ndarray, count: int, rng) -> tuple[list, list]:
    """Every single discrete term the evaluator judges, and ``count`` three-term sets from random test rows."""
    discrete = [a for a in vocab.attributes if a.discrete and a.name in heads]
    singles = [[(a.name, float(v))] for a in discrete for v in range(len(a.values))]
    triples = []
    if len(discrete) >= 3:
        for _ in range(count):
            row = y_test[rng.integers(len(y_test))]
            chosen = rng.choice(len(discrete), 3, replace=False)
            triples.append([(discrete[k].name, float(row[vocab.names.index(discrete[k].name)])) for k in chosen])
    return singles, triples


def draw_table(run, model, evaluator, vocab, train, test, args) -> list[Drawn]:
    heads = {h.name for h in evaluator.config.heads}
    y_train, y_test = vocab.targets(train), vocab.targets(test)
    singles, triples = term_sets(vocab, heads, y_test, args.descriptions, np.random.default_rng(0))
    settings = [(f"prior, guidance {g:g}", "prior", g) for g in args.guidance]
    settings.append(("directions", "directions", DEFAULT_GUIDANCE))
    rows = []
    for setting, method, guidance in settings:
        for i, terms in enumerate(singles + triples):
            real = test.images[matching(y_test, vocab, terms)]
            floor = train.images[matching(y_train, vocab, terms)]
            n = args.n if len(terms) == 1 else args.n // 4
            rows.append(draw_row(run, model, train, evaluator, vocab, setting, method, guidance, terms, n, real,
                                 floor, i))
        print(f"  {setting}: done", flush=True)
    return rows


def costs(run, model, train, z_train: np.ndarray) -> dict:
    vocab = Vocabulary.of(train)
    keep = np.random.default_rng(0).permutation(len(z_train))[:FIT_CODES]
    prior = ConditionalPrior(conditional_config(model.config.latent_dim), tuple(len(a.values) for a in vocab.attributes))
    wall, cpu = time.perf_counter(), time.process_time()
    prior.fit(z_train[keep], vocab.targets(train)[keep], NULL_PROGRESS)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    description = vocab.attributes[0].phrase(0)
    api.draw_codes(run, model, description, n=64, train=train)  # the stored prior, fitted or loaded
    times = []
    for seed in range(5):  # as in the explorer: the run open, the train split in memory
        start = time.perf_counter()
        api.draw_codes(run, model, description, n=64, seed=seed, train=train)
        times.append(time.perf_counter() - start)
    return {"fit_codes": int(len(keep)), "fit_wall_s": wall, "fit_cpu_min": cpu / 60, "draw64_s": float(np.median(times))}


def summary(rows: list[Drawn], setting: str, terms: int) -> dict:
    chosen = [r for r in rows if r.setting == setting and r.terms == terms]
    if not chosen:
        return {}
    def pick(key: str) -> float:
        values = np.asarray([getattr(r, key) for r in chosen], np.float64)
        return float(values[np.isfinite(values)].mean()) if np.isfinite(values).any() else float("nan")

    return {"share": pick("share"), "worst": min(r.share for r in chosen), "ceiling": pick("ceiling"),
            "recall": pick("recall"), "frechet": pick("frechet"), "recall_floor": pick("recall_floor"),
            "frechet_floor": pick("frechet_floor"), "n": len(chosen)}


def report(name: str, described: list[Described], rows: list[Drawn], cost: dict, mnist: bool) -> dict:
    print(f"\n== {name}: describe (reader on test codes vs evaluator on real test images) ==")
    print(f"{'attribute':<14}{'reader':>8}{'evaluator':>11}{'chance':>8}{'ratio':>7}  evaluator tells / described")
    for d in described:
        print(f"{d.attribute:<14}{d.reader:>8.3f}{d.evaluator:>11.3f}{d.chance:>8.3f}{d.ratio:>7.3f}  "
              f"{'yes' if d.evaluator_tells else 'no'} / {'yes' if d.described else 'left out'}")
    told = [d for d in described if d.evaluator_tells]
    worst = min(told, key=lambda d: d.ratio)
    print(f"describe target: ratio >= 0.95 on every attribute the evaluator tells; worst {worst.attribute} "
          f"{worst.ratio:.3f} -> {'met' if worst.ratio >= 0.95 else 'MISSED'}")
    settings = list(dict.fromkeys(r.setting for r in rows))
    print(f"\n== {name}: draw (share of drawn images with every term, by the evaluator; ceiling: real images) ==")
    print(f"{'setting':<22}{'1 term':>8}{'worst':>7}{'ceil':>6}{'3 terms':>9}{'worst':>7}{'ceil':>6}"
          f"{'recall':>8}{'floor':>7}{'FD':>8}{'floor':>7}")
    table = {}
    for s in settings:
        one, three = summary(rows, s, 1), summary(rows, s, 3)
        table[s] = {"single": one, "three": three}
        t3 = f"{three['share']:>9.3f}{three['worst']:>7.3f}{three['ceiling']:>6.2f}" if three else f"{'-':>9}{'':>13}"
        print(f"{s:<22}{one['share']:>8.3f}{one['worst']:>7.3f}{one['ceiling']:>6.2f}{t3}{one['recall']:>8.3f}"
              f"{one['recall_floor']:>7.3f}{one['frechet']:>8.2f}{one['frechet_floor']:>7.2f}")
    default = table[f"prior, guidance {DEFAULT_GUIDANCE:g}"]
    lines = [f"single terms {default['single']['share']:.3f} (target >= {0.97 if mnist else 0.95})",
             f"recall {default['single']['recall']:.3f} (target >= 0.7)"]
    if default["three"]:
        lines.insert(1, f"three terms {default['three']['share']:.3f} (target >= 0.85)")
    print("draw at the default guidance: " + "; ".join(lines))
    print(f"\ncost: conditional prior fit on {cost['fit_codes']:,} codes {cost['fit_cpu_min']:.2f} CPU-min "
          f"({cost['fit_wall_s']:.1f} s wall; target <= 2 CPU-min); 64 images drawn and decoded in "
          f"{cost['draw64_s']:.3f} s (median of 5; target < 1 s)")
    print("\nper single term at the default guidance:")
    for r in rows:
        if r.setting == f"prior, guidance {DEFAULT_GUIDANCE:g}" and r.terms == 1:
            print(f"  {r.description:<18} {r.share:.3f} (ceiling {r.ceiling:.3f}), recall {r.recall:.3f}")
    return {"describe": [asdict(d) | {"ratio": d.ratio} for d in described], "draw": table,
            "rows": [asdict(r) for r in rows], "cost": cost}


def clean(obj):
    """JSON-ready: NaN (not measured) becomes null."""
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [clean(v) for v in obj]
    return None if isinstance(obj, float) and not np.isfinite(obj) else obj


def plot(results: dict, guidance: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.6), squeeze=False)
    for ax, (name, res) in zip(axes[0], results.items()):
        table = res["draw"]
        for key, label in (("single", "1 term"), ("three", "3 terms")):
            ys = [table[f"prior, guidance {g:g}"][key].get("share") for g in guidance]
            if ys[0] is not None:
                ax.plot(guidance, ys, "o-", label=f"{label}: share with the terms")
                ax.axhline(table["directions"][key]["share"], ls=":", color=ax.lines[-1].get_color(),
                           label=f"{label}, directions baseline")
        ax.plot(guidance, [table[f"prior, guidance {g:g}"]["single"]["recall"] for g in guidance], "s--",
                label="recall (k = 3), 1 term")
        ax.set(title=name, xlabel="guidance", ylim=(0, 1.02))
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--n", type=int, default=256, help="images drawn per single term (a quarter per 3-term one)")
    p.add_argument("--descriptions", type=int, default=12, help="three-term descriptions per run")
    p.add_argument("--guidance", default="0,1,2,4", help="comma-separated guidance values to sweep")
    p.add_argument("--threads", type=int, default=None, help="torch threads (2 for the CPU figures)")
    p.add_argument("--plot", type=Path, default=None, help="write the guidance sweep as a PNG")
    p.add_argument("--json", type=Path, default=None, help="write every figure as JSON")
    args = p.parse_args()
    args.guidance = [float(g) for g in args.guidance.split(",")]
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {}
    for path in args.runs:
        run, model = api.open_model(path, "cpu")
        train, z_train = api.cached_codes(run, model, "train", NULL_PROGRESS)
        test, z_test = api.cached_codes(run, model, "test", NULL_PROGRESS)
        evaluator = api.run_evaluator(run, model, train, test)
        vocab = Vocabulary.of(train)
        print(f"{path}: {len(train):,} train / {len(test):,} test, latent {model.config.latent_dim}", flush=True)
        cost = costs(run, model, train, z_train)
        api.fitted_conditional(run, model)  # stored, or fitted once here
        described = describe_rows(api.fitted_readers(run, model), vocab, evaluator, test, z_test)
        rows = draw_table(run, model, evaluator, vocab, train, test, args)
        results[str(path)] = report(str(path), described, rows, cost, mnist=vocab.names == ("label",))
    if args.plot:
        plot(results, args.guidance, args.plot)
    if args.json:
        write_json(args.json, clean(results))


if __name__ == "__main__":
    main()
