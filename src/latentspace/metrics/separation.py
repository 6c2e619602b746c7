"""How well a score separates real images from others: AUROC, AUPR and the false-positive rate at 95% recall.

Convention (as metrics.ood): higher score = more off the manifold, and the *other* images are the positive
class. ``real`` holds the scores of the run's own images (its test split), ``other`` those of the images to
tell apart from them.

- AUROC: the probability that a random other image scores above a random real one (ties count half): 1.0 is
  perfect separation, 0.5 is chance, below 0.5 the score points the wrong way.
- AUPR: average precision with the other images as positives (sklearn's ``average_precision_score``); it
  depends on the class balance, so the counts are reported with it.
- FPR at 95% TPR: at the highest threshold that still flags 95% of the other images, the fraction of real
  images flagged too (lower is better; 0 for perfect separation).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

TPR = 0.95


@dataclass(frozen=True)
class Separation:
    """AUROC, AUPR (other images positive) and FPR at ``tpr`` recall of ``n_real`` real against ``n_other``
    other images."""

    auroc: float
    aupr: float
    fpr_at_tpr: float
    tpr: float
    n_real: int
    n_other: int


def _labelled(real: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    real, other = np.asarray(real, np.float64).ravel(), np.asarray(other, np.float64).ravel()
    if len(real) == 0 or len(other) == 0:
        raise ValueError(f"separating needs scores of both kinds, got {len(real)} real and {len(other)} other")
    scores = np.concatenate([real, other])
    if not np.isfinite(scores).all():
        raise ValueError(f"scores must be finite, got {int((~np.isfinite(scores)).sum())} NaN or infinite values")
    return np.concatenate([np.zeros(len(real)), np.ones(len(other))]), scores


def auroc(real: np.ndarray, other: np.ndarray) -> float:
    """Area under the ROC curve of scores of real (N,) against other (M,) images (other = positive)."""
    return float(roc_auc_score(*_labelled(real, other)))


def aupr(real: np.ndarray, other: np.ndarray) -> float:
    """Area under the precision-recall curve (average precision), other images positive."""
    return float(average_precision_score(*_labelled(real, other)))


def fpr_at_tpr(real: np.ndarray, other: np.ndarray, tpr: float = TPR) -> float:
    """The fraction of real images at or above the highest threshold that flags at least ``tpr`` of the others."""
    if not 0.0 < tpr <= 1.0:
        raise ValueError(f"tpr must be in (0, 1], got {tpr}")
    _labelled(real, other)  # checks
    ranked = np.sort(np.asarray(other, np.float64).ravel())[::-1]
    threshold = ranked[math.ceil(tpr * len(ranked) - 1e-9) - 1]
    return float((np.asarray(real, np.float64) >= threshold).mean())


def separation(real: np.ndarray, other: np.ndarray, tpr: float = TPR) -> Separation:
    """All three numbers for one score."""
    return Separation(auroc=auroc(real, other), aupr=aupr(real, other), fpr_at_tpr=fpr_at_tpr(real, other, tpr),
                      tpr=tpr, n_real=int(np.size(real)), n_other=int(np.size(other)))
