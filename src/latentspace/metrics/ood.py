"""Is an image on the manifold the model learned? Per-image scores, and one way to combine them.

Sign convention: every score here is an *off-manifold* score. HIGHER = MORE OFF THE MANIFOLD (less like the
images the model was trained on). Each takes uint8 images (N, C, H, W) (and the model, or codes) and returns
(N,) float64.

- ``nll``: the importance-weighted bound on -log p(x) (Burda et al. 2016), k posterior samples, nats per
  image. Raw likelihood is the obvious score and a known trap (Nalisnick et al. 2019): simple images (few
  ink pixels, flat backgrounds) get high likelihood whatever they show, so an MNIST model finds generated
  sprites *more* likely than its own test digits.
- ``complexity``: the input-complexity-corrected NLL of Serrà et al. 2020, S(x) = NLL_bits(x) - L(x), where
  L(x) is the length in bits of the image as a PNG at maximum compression (a generic lossless codec's idea of
  how complex the image is). What is left is how much better (or worse) the model codes the image than a
  model that knows nothing about the data. Caveat: the NLL here scores grey levels with a Bernoulli (or
  colour with a Gaussian density), not a discrete 8-bit likelihood, so S is a corrected score, not an
  honest code-length difference; it is judged by measurement (benchmarks/ood.py).
- ``code_density``: -log p(z) of the posterior mean z under a Gaussian mixture fitted to the encoded
  training split (the run's GMM sampler): how far the code lies from where the aggregate posterior puts
  real images. Nats.
- ``recon``: mean squared error between the image and the decoded posterior mean, on [0, 1] intensities.
- ``framing``: the squared Mahalanobis distance of the image's moments (ink per channel, centre of mass, spread,
  slant) from the training images' (metrics.framing). Not the model's: how the image sits in its frame, which a
  blurry decoder barely sees (a digit flipped upside down moves its centre of mass by one pixel).

``combined`` joins ``complexity``, ``code_density``, ``recon`` and ``framing`` into one number without choosing weights:
each score's conformal tail probability against reference scores of real images (the run's test split),
p_s(x) = (1 + #{r_s >= s(x)}) / (M + 1), extrapolated along an exponential tail past the largest reference
value, joined by Fisher's method, -sum_s log p_s(x). An image is off when one score is far out, and more off
when several are. Raw ``nll`` is left out: ``complexity`` already holds
it, corrected for the bias that makes it point the wrong way on simple images. ``combined`` is the default
because it reached the best worst-case AUROC in benchmarks/ood.py (README, "Is this image on the manifold?").

Also here, for reporting: ``percentile_of`` (where a value falls among reference values).
"""
from __future__ import annotations

import io
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from latentspace.data.transforms import to_float
from latentspace.latent.codes import check_images, evaluating, model_device
from latentspace.latent.samplers import GMMSampler
from latentspace.metrics.framing import FramingModel
from latentspace.metrics.likelihood import log_importance_weights
from latentspace.utils.progress import NULL_PROGRESS, Progress

SCORES = ("nll", "complexity", "code_density", "recon", "framing")  # one per image
COMBINED = "combined"
COMBINED_FROM = ("complexity", "code_density", "recon", "framing")
ALL_SCORES = (*SCORES, COMBINED)
SCORE_NAMES = {  # short labels with units, for tables
    "nll": "nll (IWAE, nats)",
    "complexity": "complexity (bits)",
    "code_density": "code_density (nats)",
    "recon": "recon (MSE)",
    "framing": "framing (Mahalanobis^2)",
    "combined": "combined (Fisher)",
}
PNG_LEVEL = 9  # zlib's maximum
PNG_CHUNK = 64  # images per thread at least: fewer are compressed on the calling thread
TAIL_FRACTION = 0.01  # the top of the reference that sets the exponential tail beyond its largest value


@dataclass(frozen=True)
class ManifoldScores:
    """Scores of N images, each (N,) float64 and higher = more off the manifold (see the module docstring),
    plus what they were computed from: ``z`` (N, D) float32 posterior means, ``elbo`` (N,) nats (higher is
    better; the mean of the k log importance weights, an unbiased k-sample estimate) and ``k``."""

    nll: np.ndarray
    complexity: np.ndarray
    code_density: np.ndarray
    recon: np.ndarray
    framing: np.ndarray
    elbo: np.ndarray
    z: np.ndarray
    k: int

    def __len__(self) -> int:
        return len(self.nll)

    def table(self, names: tuple[str, ...] = COMBINED_FROM) -> np.ndarray:
        """Scores ``names`` as columns of an (N, S) float64 array (default: the components of ``combined``)."""
        unknown = [name for name in names if name not in SCORES]
        if unknown:
            raise ValueError(f"unknown scores {unknown}; scores: {', '.join(SCORES)}")
        return np.stack([getattr(self, name) for name in names], axis=1)

    @staticmethod
    def concatenate(parts: list[ManifoldScores]) -> ManifoldScores:
        """The scores of several sets of images (same k), in order."""
        if not parts or len({p.k for p in parts}) != 1:
            raise ValueError(f"concatenate needs scores with one k, got k = {sorted({p.k for p in parts})}")
        fields = (*SCORES, "elbo", "z")
        return ManifoldScores(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in fields}, k=parts[0].k)

    def take(self, index: np.ndarray | slice) -> ManifoldScores:
        return ManifoldScores(**{f: getattr(self, f)[index] for f in (*SCORES, "elbo", "z")}, k=self.k)


# -- the scores ----------------------------------------------------------------------------------------------


def png_bits(images: np.ndarray) -> np.ndarray:
    """Length of each uint8 image (N, C, H, W), C = 1 or 3, saved as a PNG at maximum compression -> (N,) bits.
    Compressed on as many threads as torch may use (zlib releases the GIL): 2 ms an image at 64 px."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"png_bits needs uint8 images (N, 1 or 3, H, W), got {images.dtype} {images.shape}")
    workers = max(1, min(torch.get_num_threads(), len(images) // PNG_CHUNK))
    if workers == 1:
        return _png_bits(images)
    with ThreadPoolExecutor(workers) as pool:
        return np.concatenate(list(pool.map(_png_bits, np.array_split(images, 4 * workers))))


def _png_bits(images: np.ndarray) -> np.ndarray:
    out = np.empty(len(images), np.float64)
    for i, image in enumerate(images):
        pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG", optimize=True, compress_level=PNG_LEVEL)
        out[i] = 8 * buf.tell()
    return out


def complexity_corrected_nll(nll_nats: np.ndarray, images: np.ndarray) -> np.ndarray:
    """Serrà et al. 2020: S(x) = NLL(x) in bits - PNG length of x in bits -> (N,) bits."""
    nll_nats = np.asarray(nll_nats, np.float64)
    if nll_nats.shape != (len(images),):
        raise ValueError(f"nll_nats has shape {nll_nats.shape}, expected ({len(images)},) (one per image)")
    return nll_nats / math.log(2.0) - png_bits(images)


def code_density_score(gmm: GMMSampler, z: np.ndarray) -> np.ndarray:
    """-log p(z) under the fitted mixture, codes (N, D) -> (N,) nats."""
    return -gmm.log_prob(np.asarray(z, np.float64))


def reconstruction_error(model: torch.nn.Module, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Mean squared error between uint8 images (N, C, H, W) and their reconstructions (decoded posterior means),
    on [0, 1] intensities -> (N,) float64."""
    return _pass(model, images, 1, batch_size, None, NULL_PROGRESS)[3]


def iw_nll(
    model: torch.nn.Module, images: np.ndarray, k: int = 64, batch_size: int = 100,
    generator: torch.Generator | None = None, progress: Progress = NULL_PROGRESS,
) -> np.ndarray:
    """Per-image importance-weighted NLL bound -IW_k(x), uint8 (N, C, H, W) -> (N,) nats (for an 'ae' model,
    which has no posterior density, the reconstruction NLL at the code)."""
    return _pass(model, images, k, batch_size, generator, progress)[0]


def manifold_scores(
    model: torch.nn.Module, images: np.ndarray, gmm: GMMSampler, framing: FramingModel, k: int = 64,
    batch_size: int = 100, generator: torch.Generator | None = None, progress: Progress = NULL_PROGRESS,
) -> ManifoldScores:
    """Every score of uint8 images (N, C, H, W) in one pass over the model; ``gmm`` is the mixture over the
    training codes, ``framing`` the Gaussian over the training images' moments, ``generator`` draws the k
    posterior samples of the IW bound."""
    nll, elbo, z, recon = _pass(model, images, k, batch_size, generator, progress)
    return ManifoldScores(nll=nll, complexity=complexity_corrected_nll(nll, images),
                          code_density=code_density_score(gmm, z), recon=recon, framing=framing.score(images),
                          elbo=elbo, z=z, k=k)


def _pass(
    model: torch.nn.Module, images: np.ndarray, k: int, batch_size: int, generator: torch.Generator | None,
    progress: Progress,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(nll (N,), elbo (N,), z (N, D) float32, recon MSE (N,)) of uint8 images, batch by batch."""
    check_images(model, images)
    if k < 1 or batch_size < 1:
        raise ValueError(f"k and batch_size must be >= 1, got k={k}, batch_size={batch_size}")
    device, n = model_device(model), len(images)
    nll, elbo, recon = (np.empty(n, np.float64) for _ in range(3))
    z = np.empty((n, model.config.latent_dim), np.float32)
    progress.start(n, f"scoring, k={k}")
    try:
        with evaluating(model):
            for i in range(0, n, batch_size):
                x = to_float(images[i : i + batch_size]).to(device)
                posterior = model.encode(x)
                rows = slice(i, i + len(x))
                z[rows] = posterior.mean.float().cpu().numpy()
                recon[rows] = ((model.decode(posterior.mean) - x) ** 2).flatten(1).mean(1).double().cpu().numpy()
                if posterior.has_density:
                    log_w = log_importance_weights(model, x, k, generator).double()
                    nll[rows] = (math.log(k) - torch.logsumexp(log_w, dim=0)).cpu().numpy()
                    elbo[rows] = log_w.mean(0).cpu().numpy()
                else:  # a point mass: no density to weigh samples by
                    nll[rows] = model.recon_nll(model.decode_params(posterior.mean), x).double().cpu().numpy()
                    elbo[rows] = -nll[rows]
                progress.advance(len(x))
    finally:
        progress.close()
    return nll, elbo, z, recon


# -- calibration against real images -------------------------------------------------------------------------


def percentile_of(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Where each value falls among ``reference`` (M,): the percent of reference values below it, ties counted
    half -> (N,) in [0, 100]."""
    ref = np.sort(np.asarray(reference, np.float64))
    if ref.ndim != 1 or len(ref) == 0:
        raise ValueError(f"reference must be a non-empty 1-D array, got shape {np.shape(reference)}")
    v = np.asarray(values, np.float64)
    below, not_above = np.searchsorted(ref, v, "left"), np.searchsorted(ref, v, "right")
    return 100.0 * (below + not_above) / (2.0 * len(ref))


def tail_scale(reference: np.ndarray) -> float:
    """The scale of an exponential fitted to the top TAIL_FRACTION of ``reference`` (M,) (peaks over
    threshold: the mean excess of the top m = ceil(fraction * M) values over the next one); 0 when the tail is
    flat or M <= m."""
    ref = np.sort(np.asarray(reference, np.float64))
    m = max(1, math.ceil(TAIL_FRACTION * len(ref)))
    if len(ref) <= m:
        return 0.0
    return float((ref[-m:] - ref[-m - 1]).mean())


def log_tail_probability(values: np.ndarray, reference: np.ndarray, leave_one_out: bool = False) -> np.ndarray:
    """log of the conformal p-value of each value against reference scores (M,) of real images, higher = more
    off: p = (1 + #{r >= v}) / (M + 1), in (0, 1]. Past the largest reference value p keeps falling along the
    reference's exponential tail (``tail_scale``), p = exp(-(v - max r) / scale) / (M + 1), so a value far
    beyond every real image counts for more than one just beyond them (hence logs: p underflows). leave_one_out:
    ``values`` are the reference itself, each scored against the other M - 1 (so a reference image is judged
    exactly like a new one)."""
    ref = np.sort(np.asarray(reference, np.float64))
    if ref.ndim != 1 or len(ref) == 0:
        raise ValueError(f"reference must be a non-empty 1-D array, got shape {np.shape(reference)}")
    v = np.asarray(values, np.float64)
    if not leave_one_out:
        log_p = np.log1p(len(ref) - np.searchsorted(ref, v, "left")) - math.log(len(ref) + 1.0)
        scale = tail_scale(ref)
        beyond = v > ref[-1]
        if scale > 0 and beyond.any():
            log_p = np.where(beyond, -(v - ref[-1]) / scale - math.log(len(ref) + 1.0), log_p)
        return log_p
    if v.shape != ref.shape:
        raise ValueError(f"leave_one_out needs the reference itself as values, got {v.shape} for {ref.shape}")
    log_p = np.log(len(ref) - np.searchsorted(ref, v, "left")) - math.log(len(ref))  # (1 + #others >= v) / M
    top = int(np.argmax(v))
    if len(ref) > 1 and ref[-1] > ref[-2]:  # a unique maximum lies beyond all the others: score it as new
        log_p[top] = log_tail_probability(v[top : top + 1], ref[:-1])[0]
    return log_p


def combined_score(scores: np.ndarray, reference: np.ndarray, leave_one_out: bool = False) -> np.ndarray:
    """The default score: Fisher's combination -sum_s log p_s of each column's tail probability against the
    reference (log_tail_probability) -> (N,), 0 for an image typical on every score, higher = more off.

    scores (N, S) and reference (M, S): the same scores (ManifoldScores.table(), COMBINED_FROM) of the images and
    of real images (the test split). leave_one_out: ``scores`` is the reference itself."""
    scores, reference = np.asarray(scores, np.float64), np.asarray(reference, np.float64)
    if scores.ndim != 2 or reference.ndim != 2 or scores.shape[1] != reference.shape[1]:
        raise ValueError(f"scores (N, S) and reference (M, S) must have the same columns, got {scores.shape} and "
                         f"{reference.shape}")
    return -sum(log_tail_probability(scores[:, j], reference[:, j], leave_one_out) for j in range(scores.shape[1]))
