"""`draw`: images that fit a description ("black hair, mask on, no glasses"), from a conditional latent
diffusion prior over the run's codes (latent.conditional), or, as the baseline to compare it with, from GMM
samples moved along the attribute directions.

Terms the description leaves out are drawn from the data: the values of a random training image that has every
discrete term asked for (each column from its own distribution when no image has them all). The conditional
prior is stored beside the run like the others, keyed by the weights and its settings:

    prior_conditional.safetensors    the denoiser's (EMA) weights and the standardisations
    prior_conditional.json           {"key": ..., "config": ..., "classes": ..., "final_loss": ..., "fit_seconds": ...}
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from latentspace.api.common import Device, cached_codes, model_key, open_model
from latentspace.api.edits import run_directions
from latentspace.api.priors import fitted_gmm, store_prior, stored_prior
from latentspace.data import ImageSet
from latentspace.data.vocabulary import LABEL, Term, Vocabulary
from latentspace.latent.codes import decode_latents
from latentspace.latent.conditional import DEFAULT_GUIDANCE, ConditionalPrior
from latentspace.latent.diffusion import DiffusionConfig
from latentspace.latent.directions import AttributeDirection
from latentspace.models import Autoencoder
from latentspace.train.run import Run
from latentspace.utils.progress import NULL_PROGRESS, Progress

CONDITIONAL_WEIGHTS = "prior_conditional.safetensors"
CONDITIONAL_META = "prior_conditional.json"
MAX_DRAW = 1024
PUSH = 1.0  # the baseline moves a code to this many projection stds past the direction's threshold


@dataclass(frozen=True)
class DrawResult:
    """Images drawn for a description: its parsed ``terms``, each image's attribute values (``conditions``,
    (n, A), the vocabulary's order), codes (n, D) and images uint8 (n, C, H, W)."""

    description: str
    terms: tuple[Term, ...]
    method: str
    guidance: float
    conditions: np.ndarray
    z: np.ndarray
    images: np.ndarray


def _key(run: Run, config: DiffusionConfig, vocab: Vocabulary) -> dict:
    return {"config": config.to_dict(), "attributes": vocab.to_dict(), **model_key(run)}


def conditional_config(latent_dim: int) -> DiffusionConfig:
    """The conditional prior's settings: the unconditional prior's (measured in benchmarks/describe_draw.py)."""
    return DiffusionConfig(latent_dim=latent_dim)


def fitted_conditional(run: Run, model: Autoencoder, config: DiffusionConfig | None = None,
                       progress: Progress = NULL_PROGRESS, train: ImageSet | None = None) -> ConditionalPrior:
    """The run's conditional prior: stored, or trained now on the encoded train split and its attributes.
    ``train``: the train split when the caller holds it (loading the generated faces takes seconds)."""
    train = train if train is not None else run.dataset("train")
    vocab = Vocabulary.of(train)
    if not vocab.attributes:
        raise ValueError(f"{run.path}: the data has no labels or factors to draw from a description")
    config = config or conditional_config(model.config.latent_dim)
    key = _key(run, config, vocab)
    stored = stored_prior(run, CONDITIONAL_WEIGHTS, CONDITIONAL_META, key, ConditionalPrior.from_state)
    if stored is not None:
        return stored
    _, z = cached_codes(run, model, "train", progress)
    start = time.perf_counter()
    prior = ConditionalPrior(config, tuple(len(a.values) for a in vocab.attributes))
    prior.fit(z, vocab.targets(train), progress)
    store_prior(run, CONDITIONAL_WEIGHTS, CONDITIONAL_META, key, prior, time.perf_counter() - start)
    return prior


def fill_conditions(vocab: Vocabulary, y_train: np.ndarray, terms: tuple[Term, ...], n: int,
                    rng: np.random.Generator) -> np.ndarray:
    """(n, A) attribute values: the terms' own, the rest those of random training rows that have every discrete
    term (each column drawn on its own when no row has them all)."""
    match = np.ones(len(y_train), bool)
    for t in terms:
        if vocab.attributes[t.attribute].discrete:
            match &= y_train[:, t.attribute] == t.value
    if match.any():
        out = y_train[rng.choice(np.flatnonzero(match), n)]
    else:
        out = np.stack([y_train[rng.integers(0, len(y_train), n), j] for j in range(y_train.shape[1])], 1)
    out = out.astype(np.float32)
    for t in terms:
        out[:, t.attribute] = t.value
    return out


def _from_prior(run: Run, model: Autoencoder, vocab: Vocabulary, conditions: np.ndarray, terms: tuple[Term, ...],
                guidance: float, seed: int, config: DiffusionConfig | None, progress: Progress,
                train: ImageSet) -> np.ndarray:
    prior = fitted_conditional(run, model, config, progress, train)
    return prior.sample(conditions, np.random.default_rng(seed), guidance=guidance)


def direction_for(vocab: Vocabulary, term: Term) -> tuple[str, float] | None:
    """The attribute direction (named as latent.directions.binary_targets names them) a discrete term moves
    along, and which way; None for a continuous term."""
    a = vocab.attributes[term.attribute]
    if not a.discrete:
        return None
    value = a.values[int(term.value)]
    if a.name == LABEL:
        return f"class={value}", 1.0
    if len(a.values) == 2:
        return a.name, 1.0 if term.value == 1 else -1.0
    return f"{a.name}={value}", 1.0


def push(z: np.ndarray, direction: AttributeDirection, sign: float) -> np.ndarray:
    """Codes moved along a direction until they sit PUSH stds past its threshold on the ``sign`` side (codes
    already past it stay)."""
    target = direction.threshold + sign * PUSH * direction.scale
    gap = np.maximum(0.0, sign * (target - direction.project(z)))
    return (z + sign * gap[:, None] * direction.vector).astype(np.float32)


def _from_directions(run: Run, model: Autoencoder, vocab: Vocabulary, conditions: np.ndarray,
                     terms: tuple[Term, ...], guidance: float, seed: int, config: DiffusionConfig | None,
                     progress: Progress, train: ImageSet) -> np.ndarray:
    z = fitted_gmm(run, model, seed=0, progress=progress).sample(len(conditions), np.random.default_rng(seed))
    directions = {d.name: d for d in run_directions(run, model, progress=progress)}
    for term in terms:
        found = direction_for(vocab, term)
        if found is not None and found[0] in directions:
            z = push(z, directions[found[0]], found[1])
    return z


# name -> (what it is, how it draws codes): read by the CLI's --method choices and --help alike
DRAW_METHODS: dict[str, tuple[str, Callable[..., np.ndarray]]] = {
    "prior": ("the conditional latent-diffusion prior, with classifier-free guidance", _from_prior),
    "directions": ("the baseline: GMM samples moved along the attribute directions (discrete terms only)",
                   _from_directions),
}


def draw_codes(run: Run, model: Autoencoder, description: str, n: int = 16, guidance: float = DEFAULT_GUIDANCE,
               method: str = "prior", seed: int = 0, progress: Progress = NULL_PROGRESS,
               config: DiffusionConfig | None = None, train: ImageSet | None = None) -> DrawResult:
    """``draw`` for a run that is already open; ``config``: the conditional prior's (None: conditional_config);
    ``train``: the train split when the caller holds it (the explorer), else it is loaded."""
    if method not in DRAW_METHODS:
        raise ValueError(f"method must be one of {', '.join(DRAW_METHODS)}, got {method!r}")
    if not 1 <= n <= MAX_DRAW:
        raise ValueError(f"n must be in 1..{MAX_DRAW}, got {n}")
    train = train if train is not None else run.dataset("train")
    vocab = Vocabulary.of(train)
    terms = vocab.parse(description)
    conditions = fill_conditions(vocab, vocab.targets(train), terms, n, np.random.default_rng(seed))
    z = DRAW_METHODS[method][1](run, model, vocab, conditions, terms, float(guidance), seed, config, progress, train)
    snap = getattr(model.prior, "snap", None)
    if snap is not None:
        with torch.inference_mode():
            z = snap(torch.from_numpy(np.ascontiguousarray(z, np.float32))).cpu().numpy()
    return DrawResult(description, terms, method, float(guidance), conditions, z, decode_latents(model, z))


def draw(run_dir: str | Path, description: str, n: int = 16, guidance: float = DEFAULT_GUIDANCE,
         method: str = "prior", seed: int = 0, device: Device = "cpu", progress: Progress = NULL_PROGRESS,
         ) -> DrawResult:
    """``n`` images that fit ``description`` (see data.vocabulary for the terms), drawn by ``method``."""
    run, model = open_model(run_dir, device)
    return draw_codes(run, model, description, n, guidance, method, seed, progress)
