"""Attribute directions, edits along them, and axis traversals with the table of which axis holds which factor."""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentspace.api.common import (
    Device,
    ImageRef,
    cached_codes,
    model_key,
    open_model,
    resolve_image,
)
from latentspace.data import ImageSet
from latentspace.latent.codes import decode_latents, encode_images
from latentspace.latent.directions import (
    METHODS,
    AttributeDirection,
    BinaryTarget,
    binary_targets,
    conditional_direction,
    edit_latents,
    fit_direction,
    read_directions, save_directions,
)  # fmt: skip
from latentspace.latent.traverse import DEFAULT_VALUES, traversal_grid
from latentspace.metrics.disentanglement import AxisFactorTable, axis_factor_table
from latentspace.models import Autoencoder
from latentspace.train.run import Run
from latentspace.utils.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)

DIRECTIONS_FILE = "directions.json"


@dataclass(frozen=True)
class AttributeFit:
    """A fitted direction and the accuracy a constant guess of the majority class gets on the same test codes."""

    direction: AttributeDirection
    majority_baseline: float
    n_train: int
    n_test: int

    @property
    def name(self) -> str:
        return self.direction.name


def _majority(y: np.ndarray) -> float:
    return float(max(y.mean(), 1.0 - y.mean())) if len(y) else math.nan


def _fit_attributes(
    run: Run, model: Autoencoder, method: str, condition_on: Sequence[str], names: Sequence[str] | None,
    progress: Progress,
) -> list[AttributeFit]:
    """Fit the binary targets of the run's data (only ``names`` and ``condition_on`` when names is given)."""
    train, z_train = cached_codes(run, model, "train", progress)
    test, z_test = cached_codes(run, model, "test", progress)
    targets = {t.name: t for t in binary_targets(train, test)}
    unknown = [n for n in [*(names or ()), *condition_on] if n not in targets]
    if unknown:
        raise ValueError(f"{train.name} has no attribute {unknown[0]!r}; attributes: {', '.join(targets) or 'none'}")
    wanted = list(targets) if names is None else [*names, *condition_on]
    fits: dict[str, AttributeFit] = {}
    for name in dict.fromkeys(wanted):
        t = targets[name]
        y = t.y_train[t.keep_train]
        if y.min() == y.max():
            log.info("no direction for %r: every kept training code has label %d", name, y[0])
            continue
        d = fit_direction(z_train[t.keep_train], y, z_test[t.keep_test], t.y_test[t.keep_test], method, name)
        fits[name] = AttributeFit(d, _majority(t.y_test[t.keep_test]), int(t.keep_train.sum()),
                                  int(t.keep_test.sum()))
    if condition_on:
        missing = [n for n in condition_on if n not in fits]
        if missing:
            raise ValueError(f"cannot condition on {missing[0]!r}: it has no direction (one class only)")
        others = [fits[n].direction for n in condition_on]
        for name, f in fits.items():
            if name not in condition_on:
                fits[name] = _conditioned(f, others, targets[name], z_train, z_test)
    keep = fits if names is None else {n: fits[n] for n in names if n in fits}
    return list(keep.values())


def _conditioned(fit: AttributeFit, others: list[AttributeDirection], t: BinaryTarget, z_train: np.ndarray,
                 z_test: np.ndarray) -> AttributeFit:
    d = conditional_direction(fit.direction, others, z_train[t.keep_train], t.y_train[t.keep_train],
                              z_test[t.keep_test], t.y_test[t.keep_test])
    return AttributeFit(d, fit.majority_baseline, fit.n_train, fit.n_test)


def attributes(
    run_dir: str | Path, method: str = "logistic", condition_on: Sequence[str] = (),
    names: Sequence[str] | None = None, device: Device = "cpu", progress: Progress = NULL_PROGRESS,
) -> list[AttributeFit]:
    """A direction per binary attribute of the run's data (latent.directions.binary_targets: one per class,
    per discrete factor value, per continuous factor's top vs bottom tercile), fitted on the encoded train
    split and probed on the encoded test split. condition_on: attribute names; every other direction gets
    InterFaceGAN's conditional form, orthogonal to theirs. names: only these attributes (default: all).
    Targets with one class only are skipped."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    run, model = open_model(run_dir, device)
    return _fit_attributes(run, model, method, tuple(condition_on), None if names is None else tuple(names),
                           progress)


def run_directions(
    run: Run, model: Autoencoder, method: str = "mean", progress: Progress = NULL_PROGRESS,
) -> list[AttributeDirection]:
    """Every attribute direction of the run: those in ``directions.json`` when it exists, else fitted now with
    ``method`` and saved there (so the report, the explorer and ``edit`` share one set). Empty for data without
    labels or factors."""
    saved = saved_directions(run)
    if saved is not None:
        return saved
    train = run.dataset("train")
    if train.labels is None and train.factors is None:
        return []
    directions = [f.direction for f in _fit_attributes(run, model, method, (), None, progress)]
    save_run_directions(run, directions)
    return directions


def save_run_directions(run: Run, directions: Sequence[AttributeDirection]) -> Path:
    """Write the run's directions.json, keyed by the weights they were fitted on."""
    return save_directions(run.path / DIRECTIONS_FILE, directions, model=model_key(run))


def saved_directions(run: Run) -> list[AttributeDirection] | None:
    """The directions in the run's directions.json, or None when absent or fitted on other weights (training
    went on since, or the file predates keyed directions): a stale direction edits along the wrong axis."""
    path = run.path / DIRECTIONS_FILE
    if not path.is_file():
        return None
    directions, key = read_directions(path)
    if key != model_key(run):
        log.warning("%s: fitted on other weights than the run's model.safetensors; refitting", path)
        return None
    return directions


def _direction(run: Run, model: Autoencoder, attr: str, progress: Progress) -> AttributeDirection:
    """``attr`` from the run's directions.json when current, else fitted now (logistic) and not saved."""
    saved = saved_directions(run)
    if saved is not None:
        by_name = {d.name: d for d in saved}
        if attr not in by_name:
            path = run.path / DIRECTIONS_FILE
            raise ValueError(f"{path}: has no direction {attr!r}; it has {', '.join(by_name) or 'none'}")
        return by_name[attr]
    fits = _fit_attributes(run, model, "logistic", (), (attr,), progress)
    if not fits:
        raise ValueError(f"attribute {attr!r} has one class only in the training data: no direction to edit along")
    return fits[0].direction


def edit(
    run_dir: str | Path, image: ImageRef, attr: str, strengths: Sequence[float] = (-2, -1, 0, 1, 2),
    device: Device = "cpu", progress: Progress = NULL_PROGRESS,
) -> np.ndarray:
    """The image's posterior mean moved along attribute ``attr`` by each strength (in stds of the training
    projections) and decoded: uint8 (S, C, H, W). Strength 0 is the reconstruction."""
    if len(strengths) == 0:
        raise ValueError("strengths is empty: give at least one edit strength")
    if not np.isfinite(np.asarray(strengths, dtype=np.float64)).all():
        raise ValueError(f"strengths must be finite numbers, got {list(strengths)}")
    run, model = open_model(run_dir, device)
    pixels, _ = resolve_image(image, run, None)
    direction = _direction(run, model, attr, progress)
    z = encode_images(model, pixels[None])[0]
    return decode_latents(model, edit_latents(z, direction, strengths))


# -- traverse ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TraverseResult:
    """grid: uint8 (D, V, C, H, W), row i sweeps axis i by ``values`` (V,) around ``z0`` (D,), the image's
    posterior mean. table: which axis holds which factor, from the encoded test split (the factors when the
    data has them, else the label; None for neither). source: the image ('test[0]' or a path)."""

    grid: np.ndarray
    values: np.ndarray
    z0: np.ndarray
    table: AxisFactorTable | None
    source: str


def axis_table(images: ImageSet, z: np.ndarray) -> AxisFactorTable | None:
    """Normalised MI of each latent axis with each non-constant factor (or with the label); None without either."""
    if images.factors is not None:
        varying = [j for j in range(images.factors.shape[1]) if np.ptp(images.factors[:, j]) > 0]
        names = [images.factor_names[j] for j in varying]
        return axis_factor_table(z, images.factors[:, varying], names, [images.is_discrete(n) for n in names])
    if images.labels is not None and len(np.unique(images.labels)) > 1:
        return axis_factor_table(z, images.labels[:, None], ["label"], [True])
    return None


def traverse(
    run_dir: str | Path, image: ImageRef = 0, values: Sequence[float] = DEFAULT_VALUES, device: Device = "cpu",
    progress: Progress = NULL_PROGRESS,
) -> TraverseResult:
    """Every latent axis swept by ``values`` (prior stds) around the image's posterior mean, decoded, with the
    table of which axis holds which factor."""
    run, model = open_model(run_dir, device)
    test, z_test = cached_codes(run, model, "test", progress)
    pixels, source = resolve_image(image, run, test)
    z0 = encode_images(model, pixels[None])[0]
    grid = traversal_grid(model, z0, values=values, relative=True)
    return TraverseResult(grid, np.asarray(values, np.float32), z0, axis_table(test, z_test), source)
