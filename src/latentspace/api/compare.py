"""Runs side by side: one row per run from its cached evaluation, all measured under one protocol.

``compare(run_dirs)`` reads each run's ``evaluation.json`` and evaluates only the runs that have none (or whose
weights changed since), with the protocol the others were measured under, so every number in a row was taken
the same way. Runs measured under different protocols (another k, binarisation, number of images, seed) or on
different data are refused with one line naming the difference: a table that mixed them would compare
protocols, not models.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latentspace.api.common import Device, cached_codes, model_key, open_model
from latentspace.api.evaluate import EvaluateOptions, Evaluation, cached_evaluation, evaluate
from latentspace.api.priors import model_prior, on_codebook, stored_diffusion
from latentspace.api.measures import sample_images
from latentspace.latent.codes import decode_latents
from latentspace.train.run import open_run
from latentspace.train.zoo import resolve_run
from latentspace.utils.files import read_json, write_json, write_npz
from latentspace.utils.progress import NULL_PROGRESS, Progress

DATA_FIELDS = ("name", "size", "channels", "n", "seed")  # what makes two runs' test splits the same images


@dataclass(frozen=True)
class RunRow:
    """One run: where it is, what it is, how long it trained, and its evaluation."""

    path: Path
    name: str
    objective: str
    latent_dim: int
    parameters: int
    train_minutes: float  # wall-clock minutes of the training epochs (metrics.jsonl 'seconds'), evaluation apart
    device_note: str
    evaluation: Evaluation
    history: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Comparison:
    rows: tuple[RunRow, ...]
    options: EvaluateOptions
    dataset: str


def compare(run_dirs: list[str | Path], options: EvaluateOptions | None = None, device: Device = "cpu",
            progress: Progress = NULL_PROGRESS) -> Comparison:
    """The comparison of ``run_dirs`` (at least one). ``options``: the protocol to measure
    under; None takes the one the cached evaluations share (the defaults when none is cached)."""
    paths = [resolve_run(p) for p in run_dirs]
    if not paths:
        raise ValueError("compare needs at least one run folder")
    seen = [p.resolve() for p in paths]
    twice = next((p for p, r in zip(paths, seen) if seen.count(r) > 1), None)
    if twice is not None:
        raise ValueError(f"{twice}: given twice; each run once")
    runs = [open_run(p) for p in paths]  # a folder that is no run is refused here, by name
    _same_data(paths, [r.data_info for r in runs])
    cached = {p: cached_evaluation(p, None) for p in paths}
    protocol = options or _shared_protocol({p: e.options for p, e in cached.items() if e is not None})
    rows = []
    for path, run in zip(paths, runs):
        ev = cached[path]
        if ev is None or dataclasses.asdict(ev.options) != _resolved_for(protocol, run):
            ev = evaluate(path, protocol, device=device, progress=progress)
        rows.append(_row(path, run, ev, device))
    names = [r.name for r in rows]
    if len(set(names)) < len(names):  # runs/a/run and runs/b/run: the whole path tells them apart
        rows = [dataclasses.replace(r, name=str(r.path)) for r in rows]
    return Comparison(tuple(rows), protocol, rows[0].evaluation.dataset)


def _resolved_for(options: EvaluateOptions, run) -> dict[str, Any]:
    return dataclasses.asdict(options.resolved(run.model_config.image_shape[1]))


def _shared_protocol(found: dict[Path, EvaluateOptions]) -> EvaluateOptions:
    """The one protocol every cached evaluation used; a difference is refused, naming both runs and the field."""
    if not found:
        return EvaluateOptions()
    (first_path, first), *others = found.items()
    for path, opts in others:
        for field in dataclasses.fields(EvaluateOptions):
            a, b = getattr(first, field.name), getattr(opts, field.name)
            if a != b:
                raise ValueError(f"{path}: evaluated with {field.name}={b}, {first_path} with {field.name}={a}; "
                                 f"evaluate both with the same options (latentspace evaluate --refresh ...)")
    return first


def _same_data(paths: list[Path], infos: list[dict[str, Any]]) -> None:
    for path, info in zip(paths[1:], infos[1:]):
        for field in DATA_FIELDS:
            if info.get(field) != infos[0].get(field):
                raise ValueError(f"{path}: trained on data with {field}={info.get(field)!r}, {paths[0]} on "
                                 f"{field}={infos[0].get(field)!r}; compare runs on the same data")


def _row(path: Path, run, ev: Evaluation, device: Device) -> RunRow:
    history = tuple(run.metrics())
    _, model = open_model(path, "cpu")
    parameters = sum(p.numel() for p in model.parameters())
    minutes = sum(float(r.get("seconds", 0.0)) for r in history) / 60.0
    train = run.config.get("train", {})
    note = f"{train.get('threads') or 'default'} threads"
    return RunRow(path, path.name, run.model_config.objective,
                  run.model_config.latent_dim, parameters, minutes, note, ev, history)


# -- the table ----------------------------------------------------------------------------------------------

MISSING = "–"


def _fmt(value: Any, digits: int) -> str:
    if value is None:
        return MISSING
    if isinstance(value, tuple):  # (mean, sd) over seeds
        return f"{value[0]:.{digits}f} ± {value[1]:.{digits}f}"
    return f"{value:.{digits}f}"


def row_values(row: RunRow) -> dict[str, Any]:
    """A run's numbers by column header (None where the run has none), for the table and for sweeps."""
    ev, rec = row.evaluation, row.evaluation.reconstruction
    values: dict[str, Any] = {
        "objective": row.objective, "latent": row.latent_dim, "parameters": row.parameters,
        "train minutes": row.train_minutes, "test MSE": rec.mse, "PSNR dB": rec.psnr_db, "SSIM": rec.ssim,
        "ELBO nats": rec.elbo_nats, "KL nats": rec.kl_nats, "recon NLL nats": rec.recon_nll_nats,
        f"IW NLL k={rec.iw_k}": rec.iw_nll_nats,
        f"binarised IW NLL k={rec.iw_k}": rec.binarized_iw_nll_nats,
    }
    for s in ev.generation.samplers if ev.generation is not None else ():
        values[f"FD {s.name}"], values[f"precision {s.name}"], values[f"recall {s.name}"] = (
            s.frechet, s.precision, s.recall)
    if ev.disentanglement is not None:
        d = ev.disentanglement
        values.update({"MIG": d.mig, "DCI disentanglement": d.dci_disentanglement, "SAP": d.sap})
    for p in ev.probes:
        values[f"probe {p.target}"] = max(p.knn_accuracy, p.logistic_accuracy)
    if ev.manifold.sets:
        values["OOD AUROC"] = min(s.auroc for s in ev.manifold.sets)
    return values


DIGITS = {"latent": 0, "parameters": 0, "train minutes": 1, "test MSE": 5, "SSIM": 3, "MIG": 3, "SAP": 3,
          "DCI disentanglement": 3, "OOD AUROC": 3}


def table_cells(names: list[str], values: list[dict[str, Any]]) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """Formatted (columns, rows): one row per name; columns no run has are dropped, missing cells are '–'."""
    columns = list(dict.fromkeys(k for v in values for k in v))
    columns = [c for c in columns if any(v.get(c) is not None for v in values)]
    rows = []
    for name, v in zip(names, values):
        cells = [name]
        for c in columns:
            x = v.get(c)
            text = x if isinstance(x, str) else _fmt(x, _digits(c)) if not isinstance(x, int) or isinstance(
                x, bool) else f"{x:,}"
            cells.append(str(text) if x is not None else MISSING)
        rows.append(tuple(cells))
    return ("run", *columns), tuple(rows)


def _digits(column: str) -> int:
    if column in DIGITS:
        return DIGITS[column]
    return 3 if column.startswith(("precision", "recall", "probe")) else 2


# -- the pictures -------------------------------------------------------------------------------------------

PICTURES, PICTURES_KEY = "compare_pictures.npz", "compare_pictures.json"
SHOWN = 8


def run_pictures(row: RunRow, options: EvaluateOptions, device: Device = "cpu") -> tuple[np.ndarray, np.ndarray, str]:
    """(reconstructions of the first SHOWN test images, SHOWN samples, the sampler's name), uint8 (N, C, H, W).
    Samples come from the latent diffusion prior the evaluation fitted (else the model's own prior). Cached in
    the run folder for these weights, so a second compare decodes nothing."""
    run, model = open_model(row.path, device)
    key = {**model_key(run), "options": dataclasses.asdict(options)}
    path, key_path = row.path / PICTURES, row.path / PICTURES_KEY
    if path.is_file() and key_path.is_file() and read_json(key_path) == key:
        with np.load(path) as saved:
            return saved["recon"], saved["samples"], str(saved["sampler"])
    _, z_test = cached_codes(run, model, "test", NULL_PROGRESS)
    recon = decode_latents(model, z_test[:SHOWN])
    diffusion = stored_diffusion(run, options.diffusion(model.config.latent_dim))
    name, sampler = ("latent diffusion", on_codebook(model, diffusion)) if diffusion is not None else (
        f"prior {model.prior.title}", model_prior(model))
    samples = sample_images(model, sampler, SHOWN, seed=1)
    write_npz(path, {"recon": recon, "samples": samples, "sampler": np.array(name)})
    write_json(key_path, key)
    return recon, samples, name
