"""Fréchet distance between two feature sets, each summarised by a Gaussian (the formula of FID, Heusel et al. 2017).

    d^2 = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))

In latentspace the features are the penultimate layer of the run's own evaluator classifier
(``Evaluator.features``), not Inception-v3: the number is a "Fréchet distance in evaluator features", comparable
between runs that share an evaluator, and never to published FID values.
"""
from __future__ import annotations

import logging
import warnings

import numpy as np
from scipy import linalg

log = logging.getLogger(__name__)

EPS = 1e-6  # added to both covariances' diagonals when their product has no finite square root


def _features(x: np.ndarray, which: str) -> np.ndarray:
    f = np.asarray(x, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"{which} must be (N, F) features, got shape {f.shape}")
    if len(f) < 2:
        raise ValueError(f"{which} has {len(f)} rows; a covariance needs at least 2")
    if not np.isfinite(f).all():
        raise ValueError(f"{which} holds {int((~np.isfinite(f)).sum())} non-finite values; expected finite features")
    return f


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (F,) and unbiased covariance (F, F) of features (N, F), in float64."""
    f = _features(features, "features")
    return f.mean(0), np.atleast_2d(np.cov(f, rowvar=False))


def _sqrtm(m: np.ndarray) -> np.ndarray:
    """scipy.linalg.sqrtm without its singular-matrix warning: the caller checks the result for finiteness,
    and a singular product (fewer samples than features, constant features) is common and harmless here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        return linalg.sqrtm(m)


def frechet_distance_from_stats(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Squared Fréchet distance between N(mu_a, cov_a) and N(mu_b, cov_b); mu (F,), cov (F, F). Result >= 0.

    The matrix square root is scipy.linalg.sqrtm; when it is not finite (a singular product) both covariances
    get EPS * I added, as in the reference FID code. Its imaginary part is numerical noise and is dropped;
    a tiny negative total (round-off) is clamped to 0.
    """
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    cov_a, cov_b = np.atleast_2d(np.asarray(cov_a, np.float64)), np.atleast_2d(np.asarray(cov_b, np.float64))
    if mu_a.shape != mu_b.shape or cov_a.shape != cov_b.shape or cov_a.shape != (len(mu_a), len(mu_a)):
        raise ValueError(f"statistics disagree: means {mu_a.shape} and {mu_b.shape}, covariances {cov_a.shape} "
                         f"and {cov_b.shape}; expected (F,) means and (F, F) covariances of one F")
    covmean = _sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():
        log.info("sqrtm of the covariance product is not finite; adding %g to the diagonals", EPS)
        offset = np.eye(len(cov_a)) * EPS
        covmean = _sqrtm((cov_a + offset) @ (cov_b + offset))
    covmean = np.real(covmean)
    diff = mu_a - mu_b
    d2 = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean))
    return max(d2, 0.0)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance (squared, as in FID; lower is better, >= 0) between Gaussians fitted to two feature sets.

    features_a: (N, F), features_b: (M, F), any float dtype; computed in float64. In latentspace these are
    evaluator-classifier features, so this is the "Fréchet distance in evaluator features", not FID.
    """
    a = _features(features_a, "features_a")
    b = _features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"features_a has {a.shape[1]} features per row, features_b has {b.shape[1]}; "
                         "both must come from the same feature extractor")
    return frechet_distance_from_stats(*gaussian_stats(a), *gaussian_stats(b))
