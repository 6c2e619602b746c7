"""The compare page: runs side by side in one self-contained page, rendered by the report's own template (so
it passes the same checks: nothing fetched, every image embedded, no sideways scroll on a phone)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from latentspace.api.compare import Comparison, run_pictures, row_values, table_cells
from latentspace.report.parts import ReportContext, Section, Table
from latentspace.report.render import write_report
from latentspace.report.sections import png, tiles
from latentspace.utils.version import __version__
from latentspace.viz.compare import labelled_points, run_curves


def protocol_line(c: Comparison) -> str:
    o = c.options
    return (f"All runs measured under one protocol on {c.dataset}'s test split: IW bound k={o.iw_k} on {o.iw_n} "
            f"images{' (and on a dynamically binarised copy)' if o.binarized else ''}, {o.samples} samples per "
            f"sampler, latent diffusion of {o.diffusion_steps} steps, seed {o.seed}. Train minutes: wall-clock "
            "training epochs, evaluation apart.")


def comparison_context(c: Comparison, names: list[str] | None = None, values: list[dict] | None = None,
                       device: str = "cpu") -> ReportContext:
    """The page of a comparison. ``names``/``values``: rows to tabulate instead of one per run (a sweep's
    groups, mean ± sd over seeds); the pictures always show every run."""
    labels = [r.name for r in c.rows]
    per_run = [row_values(r) for r in c.rows]
    columns, rows = table_cells(names or labels, values or per_run)
    table = Section("runs", "1. The runs side by side", protocol_line(c),
                    tables=(Table("One row per run; – where a run has no such measure.", columns, rows),))
    return ReportContext(title="latentspace compare", subtitle=f"{len(c.rows)} runs on {c.dataset}",
                         run=", ".join(labels), version=__version__, created=time.strftime("%Y-%m-%d %H:%M"),
                         sections=(table, _plots(c, labels, per_run), _pictures(c, device)))


def _plots(c: Comparison, labels: list[str], values: list[dict]) -> Section:
    rate = labelled_points([(v["KL nats"], v["recon NLL nats"]) for v in values], labels, "KL (rate), nats",
                           "reconstruction NLL (distortion), nats", "rate against distortion")
    curves = run_curves([(np.cumsum([r.get("seconds", 0.0) / 60 for r in row.history]),
                          [-r["test_elbo"] for r in row.history]) for row in c.rows], labels,
                        "training minutes", "test -ELBO, nats", "-ELBO against training time")
    fd = next((k for k in values[0] if k.startswith("FD latent diffusion")), None)
    figures = [png("rate and distortion", "Each run's test KL against its reconstruction NLL: lower-left is "
                   "better on both; a family's regulariser moves it along this trade-off.", rate),
               png("-ELBO over training", "The test -ELBO after each epoch (metrics.jsonl) against the minutes "
                   "spent training.", curves)]
    if fd is not None:
        fd_mse = labelled_points([(v["test MSE"], v.get(fd)) for v in values], labels, "test MSE",
                                 "FD of latent-diffusion samples", "sample quality against fidelity")
        figures.append(png("FD against MSE", "Fréchet distance of latent-diffusion samples (evaluator features) "
                           "against reconstruction error: lower-left is better on both.", fd_mse))
    return Section("plots", "2. Trade-offs", "Where each run sits between compression, fidelity and generation.",
                   tuple(figures))


def _pictures(c: Comparison, device: str) -> Section:
    figures = []
    for row in c.rows:
        recon, samples, sampler = run_pictures(row, c.options, device)
        figures.append(png(row.name, f"{row.objective}: top, reconstructions of the first test images; bottom, "
                           f"samples from the {sampler}.", tiles(np.concatenate([recon, samples]),
                                                                 ncols=len(recon))))
    return Section("pictures", "3. Reconstructions and samples", "One row of reconstructions and one of samples "
                   "per run, the same test images for every run.", tuple(figures))


def write_comparison(c: Comparison, path: str | Path, names=None, values=None, device: str = "cpu") -> Path:
    return write_report(comparison_context(c, names, values, device), path)
