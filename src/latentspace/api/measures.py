"""The measured pieces of `evaluate`, one function each, over a run that is already open and codes already
encoded (api.common.cached_codes), so that nothing is encoded twice. Every result says how it was measured in
its ``protocol`` string; `evaluate` only orders and caches them."""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from latentspace.api.priors import Sampler
from latentspace.data import ImageSet
from latentspace.data.transforms import batch_rows, to_float
from latentspace.latent.codes import decode_latents, model_device
from latentspace.latent.directions import AttributeDirection, edit_latents
from latentspace.metrics.compression import CompressionCurve, pca_curve
from latentspace.metrics.dci import dci
from latentspace.metrics.evaluator import (
    LABEL_HEAD,
    Evaluator,
    dataset_heads,
    head_targets,
)
from latentspace.metrics.fidelity import precision_recall
from latentspace.metrics.frechet import frechet_distance
from latentspace.metrics.likelihood import elbo_nats, importance_weighted_nll
from latentspace.metrics.probes import ProbeResult, code_probes
from latentspace.metrics.realness import classifier_confidence
from latentspace.metrics.sap import sap
from latentspace.metrics.sharpness import hf_share
from latentspace.metrics.structure import WINDOW, mean_ssim, window_size
from latentspace.models import Autoencoder
from latentspace.utils.progress import NULL_PROGRESS, Progress


@dataclass(frozen=True)
class Reconstruction:
    """Test-split reconstruction and likelihood. mse: per pixel value on [0, 1]; psnr_db: 10 log10(1 / mse);
    ssim: mean structural similarity (metrics.structure, higher is better, 1 = identical); hf_ratio: the
    reconstructions' high-frequency share of spectral power over the test images' (metrics.sharpness; 1 = as
    sharp, below 1 blurred; None when the test images have no high-frequency power). elbo_nats, recon_nll_nats,
    kl_nats: means over the test split (one posterior sample each).
    iw_nll_nats: -IW_k averaged over iw_n test images (None for an 'ae'); binarized_iw_nll_nats: the same on a
    dynamically binarised copy (None unless asked for)."""

    mse: float
    psnr_db: float
    ssim: float
    hf_ratio: float | None
    elbo_nats: float
    recon_nll_nats: float
    kl_nats: float
    iw_nll_nats: float | None
    binarized_iw_nll_nats: float | None
    iw_k: int
    iw_n: int
    n: int
    protocol: str


def binarize(images: np.ndarray, seed: int) -> np.ndarray:
    """Dynamic binarisation with a fixed seed: each pixel is 255 with probability intensity / 255, else 0."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random(images.shape) < images / 255.0, 255, 0).astype(np.uint8)


def iw_subset(n: int, iw_n: int, seed: int) -> np.ndarray:
    if iw_n >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=iw_n, replace=False))


def reconstruction(
    model: Autoencoder, test: ImageSet, recon: np.ndarray, iw_k: int, iw_n: int, binarized: bool, seed: int,
    progress: Progress = NULL_PROGRESS,
) -> Reconstruction:
    """Reconstruction error of ``recon`` (the decoded posterior means of the test split), ELBO of the whole
    test split, and the IW bound on a seeded subset of ``iw_n`` test images with ``iw_k`` samples each."""
    mse = float(((to_float(recon) - to_float(test.images)) ** 2).mean())
    structure = mean_ssim(recon, test.images)
    real_share = hf_share(test.images)
    sharpness = hf_share(recon) / real_share if real_share > 0 else None
    device = model_device(model)
    generator = torch.Generator(device).manual_seed(seed)
    elbo = elbo_nats(model, test.images, generator=generator)
    variational = model.config.is_variational
    subset = test.images[iw_subset(len(test), iw_n, seed)]
    batch = batch_rows(subset.shape[1:])  # images per pass; their k samples are decoded a batch at a time
    iw = None
    if variational:
        iw = importance_weighted_nll(model, subset, k=iw_k, batch_size=batch, generator=generator, progress=progress)
    if binarized and not variational:
        raise ValueError(f"--binarized needs a variational model (its IW bound); this run's objective is "
                         f"{model.config.objective!r}, whose posterior has no density")
    bin_iw = None
    if binarized:
        bin_iw = importance_weighted_nll(model, binarize(subset, seed), k=iw_k, batch_size=batch,
                                         generator=generator, progress=progress).nll_nats
    n_iw = len(subset)
    win = window_size(*test.shape[1:])
    fitted = "" if win == WINDOW else f"; {WINDOW} does not fit"
    protocol = (f"MSE/PSNR/SSIM: posterior-mean reconstructions of all {len(test)} test images, pixels on [0, 1]; "
                f"SSIM with a Gaussian window of {win} (sigma 1.5{fitted}), mean over images; high-frequency ratio: "
                "mean share of 2-D FFT power above half the Nyquist frequency (channels mean-subtracted), "
                f"reconstructions over test images; ELBO: one posterior sample per test image; IW bound: k = {iw_k} "
                f"samples on {n_iw} seeded test images (seed {seed})"
                + (", and on a dynamically binarised copy of them" if binarized else ""))
    return Reconstruction(mse, 10 * math.log10(1 / max(mse, 1e-12)), structure, sharpness, elbo.elbo_nats,
                          elbo.recon_nll_nats, elbo.kl_nats, None if iw is None else iw.nll_nats, bin_iw, iw_k,
                          n_iw, len(test), protocol)


@dataclass(frozen=True)
class Compression:
    """How well few axes describe an image: the model's test MSE at ``latent_dim`` axes, PCA's at each size,
    and the PCA size needed to match the model (None: even the largest PCA is worse)."""

    latent_dim: int
    model_mse: float
    pca: CompressionCurve
    pca_to_match: int | None
    protocol: str


def compression(train: ImageSet, test: ImageSet, latent_dim: int, model_mse: float, seed: int) -> Compression:
    curve = pca_curve(train.images, test.images, seed=seed)
    protocol = ("PCA fitted on the train split's pixels (a seeded subsample of at most 20,000 images), test MSE "
                "of the reconstruction from k components, same [0, 1] pixels as the model's MSE")
    return Compression(latent_dim, model_mse, curve, curve.components_to_match(model_mse), protocol)


@dataclass(frozen=True)
class SampleQuality:
    """One sample set judged against the test split in evaluator features: frechet (lower is better),
    precision and recall (k = 3), mean evaluator confidence (mean over heads of the top class probability),
    and the seconds it took to draw and decode the images (0 for real images)."""

    name: str
    frechet: float
    precision: float
    recall: float
    confidence: float
    seconds: float


@dataclass(frozen=True)
class Generation:
    """Samples of each sampler against the test split; ``floor``: train images against the test split, what
    a perfect model would reach with this many images."""

    n: int
    samplers: tuple[SampleQuality, ...]
    floor: SampleQuality
    protocol: str


def _quality(name: str, evaluator: Evaluator, images: np.ndarray, reference: np.ndarray,
             seconds: float = 0.0) -> SampleQuality:
    features = evaluator.features(images)
    pr = precision_recall(reference, features, k=3)
    return SampleQuality(name, frechet_distance(reference, features), pr.precision, pr.recall,
                         float(classifier_confidence(evaluator, images).mean()), seconds)


def sample_images(model: Autoencoder, sampler: Sampler, n: int, seed: int) -> np.ndarray:
    """``n`` decoded samples, uint8 (n, C, H, W), drawn with a seeded numpy generator."""
    return decode_latents(model, sampler.sample(n, np.random.default_rng(seed)))


def _timed_samples(model: Autoencoder, sampler: Sampler, n: int, seed: int) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    images = sample_images(model, sampler, n, seed)
    return images, time.perf_counter() - start


def generation(
    model: Autoencoder, train: ImageSet, test: ImageSet, evaluator: Evaluator,
    samplers: Sequence[tuple[str, Sampler]], n: int, seed: int,
) -> Generation:
    """``n`` samples of each named sampler against ``n`` test images (all when fewer)."""
    rng = np.random.default_rng(seed)
    n = min(n, len(test), len(train))
    reference = evaluator.features(test.images[np.sort(rng.choice(len(test), n, replace=False))])
    floor_images = train.images[np.sort(rng.choice(len(train), n, replace=False))]
    scores = tuple(_score(name, evaluator, model, s, n, seed, reference) for name, s in samplers)
    protocol = (f"{n} samples per sampler and {n} test images, compared in the evaluator classifier's "
                f"{evaluator.config.hidden}-d penultimate features: Frechet distance (the FID formula, not FID: "
                "the features are not Inception's), improved precision and recall with k = 3 (Kynkaenniemi et al. "
                f"2019); floor: {n} train images against the same test images; seconds: drawing and decoding "
                f"{n} images")
    return Generation(n, scores, _quality("train images (floor)", evaluator, floor_images, reference), protocol)


def _score(name: str, evaluator: Evaluator, model: Autoencoder, sampler: Sampler, n: int, seed: int,
           reference: np.ndarray) -> SampleQuality:
    images, seconds = _timed_samples(model, sampler, n, seed)
    return _quality(name, evaluator, images, reference, seconds)


@dataclass(frozen=True)
class HeadAccuracy:
    """The evaluator's accuracy on one target, on real test images and on their reconstructions."""

    head: str
    real: float
    reconstructed: float


def evaluator_accuracy(evaluator: Evaluator, test: ImageSet, reconstructions: np.ndarray) -> tuple[HeadAccuracy, ...]:
    targets = head_targets(test, evaluator.config.heads)
    real = evaluator.predict_proba(test.images)
    recon = evaluator.predict_proba(reconstructions)
    return tuple(
        HeadAccuracy(h.name, float((real[h.name].argmax(1) == targets[:, j]).mean()),
                     float((recon[h.name].argmax(1) == targets[:, j]).mean()))
        for j, h in enumerate(evaluator.config.heads)
    )


@dataclass(frozen=True)
class EditSuccess:
    """An attribute edit judged by the evaluator: test images without the attribute (n), moved by
    ``strength`` stds along its direction. p_before / p_after: mean evaluator P(attribute) on the
    reconstruction and on the edited image; already: fraction whose reconstruction has P > 0.5 (the evaluator
    sees the attribute without any edit); success: fraction whose edited image has P > 0.5."""

    attribute: str
    head: str
    value: str
    strength: float
    n: int
    p_before: float
    p_after: float
    already: float
    success: float


def attribute_head(name: str, evaluator: Evaluator) -> tuple[str, int] | None:
    """The evaluator head and class an attribute direction names ('mask_on' -> (mask_on, 1), 'hair_color=
    blond' -> (hair_color, index of blond), 'class=3' -> (label, index of '3')); None when no head judges it."""
    field, _, value = name.partition("=")
    head = LABEL_HEAD if field == "class" else field
    heads = {h.name: h for h in evaluator.config.heads}
    if head not in heads:
        return None
    h = heads[head]
    if not value:
        return (head, 1) if h.n_classes == 2 else None
    return (head, h.values.index(value)) if value in h.values else None


def edit_successes(
    model: Autoencoder, test: ImageSet, z_test: np.ndarray, evaluator: Evaluator,
    directions: list[AttributeDirection], strength: float = 2.0, n: int = 500, seed: int = 0,
    recon: np.ndarray | None = None,
) -> tuple[EditSuccess, ...]:
    """Every direction an evaluator head can judge, applied with ``strength`` to at most ``n`` seeded test
    images that lack the attribute. ``recon``: the decoded ``z_test`` when the caller has it (the unedited
    images, half of the decoding)."""
    recon = decode_latents(model, z_test) if recon is None else recon
    unedited = evaluator.predict_proba(recon)  # head -> (N, K): every direction of a head reads the same
    out = []
    targets = head_targets(test, evaluator.config.heads)
    columns = {h.name: j for j, h in enumerate(evaluator.config.heads)}
    rng = np.random.default_rng(seed)
    for d in directions:
        judged = attribute_head(d.name, evaluator)
        if judged is None:
            continue
        head, cls = judged
        lacking = np.flatnonzero(targets[:, columns[head]] != cls)
        if len(lacking) == 0:
            continue
        pick = np.sort(rng.choice(lacking, size=min(n, len(lacking)), replace=False))
        edited = decode_latents(model, edit_latents(z_test[pick], d, (strength,))[:, 0])
        before = unedited[head][pick, cls]
        after = evaluator.predict_proba(edited, head=head)[:, cls]
        value = evaluator.config.head(head).values[cls]
        out.append(EditSuccess(d.name, head, value, strength, len(pick), float(before.mean()), float(after.mean()),
                               float((before > 0.5).mean()), float((after > 0.5).mean())))
    return tuple(out)



@dataclass(frozen=True)
class Disentanglement:
    """Scores of the codes against the known factors (those that vary): MIG on the test codes, DCI and SAP
    trained on train codes and scored on test codes."""

    factors: tuple[str, ...]
    mig: float
    dci_disentanglement: float
    dci_completeness: float
    dci_informativeness: float
    sap: float
    protocol: str


def varying_factors(images: ImageSet) -> list[int]:
    return [] if images.factors is None else [j for j in range(images.factors.shape[1])
                                              if np.ptp(images.factors[:, j]) > 0]


def disentanglement(train: ImageSet, test: ImageSet, z_train: np.ndarray, z_test: np.ndarray,
                    mig: float, seed: int) -> Disentanglement | None:
    """None for data without factors (labels alone are not factors of variation)."""
    cols = varying_factors(test)
    if not cols:
        return None
    names = tuple(test.factor_names[j] for j in cols)
    mask = [test.is_discrete(n) for n in names]
    d = dci(z_train, train.factors[:, cols], z_test, test.factors[:, cols], mask, seed=seed)
    s = sap(z_train, train.factors[:, cols], z_test, test.factors[:, cols], mask)
    protocol = ("disentanglement_lib's protocols on posterior means: MIG from 20-bin histograms of the test "
                "codes; DCI from tree-ensemble importances (fitted on train codes, informativeness = test "
                "accuracy); SAP from single-axis predictors (train -> test); continuous factors discretised "
                "into 20 bins")
    return Disentanglement(names, mig, d.disentanglement, d.completeness, d.informativeness, s, protocol)


def probes(train: ImageSet, test: ImageSet, z_train: np.ndarray, z_test: np.ndarray,
           seed: int) -> tuple[ProbeResult, ...]:
    """k-NN (k = 5) and logistic-regression accuracy of the codes for each label / discrete factor."""
    heads = dataset_heads(train)
    y_train, y_test = head_targets(train, heads), head_targets(test, heads)
    return tuple(code_probes(z_train, y_train[:, j], z_test, y_test[:, j], h.name, seed=seed)
                 for j, h in enumerate(heads))
