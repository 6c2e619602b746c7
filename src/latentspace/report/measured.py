"""The report's measured sections: generation, the evaluation table with the compression curve, and the run
itself (config, training curves, wall times). Numbers come from the cached evaluation (api.evaluate)."""
from __future__ import annotations

import math

import numpy as np

from latentspace import api
from latentspace.api.evaluate import evaluation_rows, protocols
from latentspace.api.measures import sample_images
from latentspace.latent.samplers import PriorSampler
from latentspace.report.parts import Section, Sources, Table
from latentspace.report.sections import png, tiles
from latentspace.viz.plots import compression_plot, metric_curves

SAMPLES_SHOWN = 32


def generation(src: Sources) -> Section:
    model = api.load(src.run_dir, src.device)
    gmm = api.gmm_sampler(src.run_dir, seed=src.evaluation.options.seed, device=src.device, progress=src.progress)
    gen = src.evaluation.generation
    scores = {s.name: s for s in gen.samplers} if gen is not None else {}
    figures = []
    for name, sampler in (("prior N(0, I)", PriorSampler(model.config.latent_dim)), ("GMM", gmm)):
        images = sample_images(model, sampler, SAMPLES_SHOWN, seed=1)
        s = scores.get(name)
        quote = "" if s is None else (f" Frechet distance {s.frechet:.2f} (floor {gen.floor.frechet:.2f}), precision "
                                      f"{s.precision:.2f}, recall {s.recall:.2f} over {gen.n:,} samples.")
        what = ("codes drawn from the prior the model was trained towards" if name.startswith("prior") else
                "codes drawn from a 10-component Gaussian mixture fitted to the encoded training images")
        figures.append(png(f"samples: {name}", f"Decoded {what}.{quote}", tiles(images, ncols=8)))
    lead = ("Decoding random codes generates new images. Sampling where the data actually lies in latent space "
            "(the GMM) rather than from the prior usually gives more natural images.")
    if gen is None:
        return Section("generation", "5. Generation", lead, tuple(figures),
                       notes=("no labels or factors: there is no evaluator to measure sample quality with",))
    rows = tuple((s.name, f"{s.frechet:.2f}", f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.confidence:.3f}")
                 for s in (*gen.samplers, gen.floor))
    table = Table(gen.protocol, ("sampler", "Frechet distance (lower)", "precision (higher)", "recall (higher)",
                                 "evaluator confidence"), rows)
    return Section("generation", "5. Generation", lead, tuple(figures), (table,))


def evaluation(src: Sources) -> Section:
    ev = src.evaluation
    rows = tuple((r.section, r.measure, r.value, r.better) for r in evaluation_rows(ev))
    table = Table("Every number of `latentspace evaluate`; the protocols follow the table",
                  ("section", "measure", "value", "better"), rows)
    how = Table("How each number was measured", ("section", "protocol"), tuple(protocols(ev).items()))
    c = ev.compression
    match = (f"PCA needs {c.pca_to_match} components to do as well" if c.pca_to_match is not None else
             f"even PCA with {c.pca.components[-1]} components does worse")
    figure = png("compression: latent axes against PCA", f"Test MSE per pixel: the model with {c.latent_dim} latent "
                 f"axes reaches {c.model_mse:.5f}; {match}. The dashed line is the mean image alone "
                 f"({c.pca.mean_image_mse:.5f}).",
                 compression_plot(c.pca.components, c.pca.mse, c.latent_dim, c.model_mse, c.pca.mean_image_mse))
    recon = [a for a in ev.evaluator_accuracy]
    acc = "; ".join(f"{a.head} {a.reconstructed:.1%}" for a in recon)
    lead = ("Far fewer axes than pixels describe an image. " +
            (f"The evaluator recognises the reconstructions as well as the originals: accuracy on reconstructions "
             f"{acc}." if recon else ""))
    return Section("evaluation", "8. The evaluation", lead, (figure,), (table, how), ev.notes)


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, str]]:
    out = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        out += _flatten(v, key + ".") if isinstance(v, dict) else [(key, str(v))]
    return out


def run_itself(src: Sources) -> Section:
    metrics = api.open_run(src.run_dir).metrics()
    figures = ()
    if metrics:
        figures = (png("training curves", f"Train and test ELBO after each of {len(metrics)} epochs; the last test "
                       f"ELBO is {metrics[-1].get('test_elbo', math.nan):.2f} nats.", metric_curves(metrics)),)
    train_s = sum(float(r.get("seconds", 0.0)) for r in metrics)
    eval_s = sum(float(r.get("eval_seconds", 0.0)) for r in metrics)
    speed = np.mean([r["images_per_s"] for r in metrics if "images_per_s" in r]) if metrics else math.nan
    times = Table("Wall times from metrics.jsonl", ("epochs", "training, s", "evaluation, s", "images/s (mean)"),
                  ((str(len(metrics)), f"{train_s:.1f}", f"{eval_s:.1f}", f"{speed:,.0f}"),))
    config = Table("config.json: everything needed to rebuild the model and resume training", ("key", "value"),
                   tuple(_flatten(src.config)))
    lead = f"The run folder {src.run_dir} holds the weights, the config, the metrics and every cache this page used."
    return Section("run", "9. The run itself", lead, figures, (times, config))
