"""Codes as features: how well simple classifiers read a label off the latent codes.

Two probes, both fitted on training codes and scored on test codes:
- k-nearest neighbours (Euclidean, on the raw codes): is the label local in latent space?
- logistic regression on standardised codes (lbfgs, multinomial): is the label linearly readable?
The majority-class accuracy on the test split (the most frequent training label, always predicted) is the floor
to compare both against.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


@dataclass(frozen=True)
class ProbeResult:
    """Test accuracies in [0, 1] of the two probes and of always predicting the majority training label, for the
    label ``target``; n_train / n_test: how many codes the probes were fitted on / scored on."""

    target: str
    knn_accuracy: float
    logistic_accuracy: float
    majority_accuracy: float
    n_train: int
    n_test: int


def _check(z: np.ndarray, y: np.ndarray, split: str) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y)
    if z.ndim != 2 or y.ndim != 1 or len(z) != len(y):
        raise ValueError(f"{split}: expected codes (N, D) and labels (N,) with one N, got {z.shape} and {y.shape}")
    if not np.isfinite(z).all():
        raise ValueError(f"{split}: codes hold non-finite values")
    return z, y


def code_probes(
    z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray, target: str,
    k: int = 5, max_train: int = 20_000, seed: int = 0,
) -> ProbeResult:
    """kNN and logistic-regression test accuracy of labels (N,) read from codes (N, D).

    At most ``max_train`` training codes are used (a seeded subsample), so 60k MNIST codes take seconds.
    Labels may be any hashable class values; the training split needs at least two classes and more than k rows.
    """
    z_tr, y_tr = _check(z_train, y_train, "train")
    z_te, y_te = _check(z_test, y_test, "test")
    if z_tr.shape[1] != z_te.shape[1]:
        raise ValueError(f"train codes have {z_tr.shape[1]} axes, test codes {z_te.shape[1]}; expected the same")
    if len(z_te) == 0:
        raise ValueError("test: no rows; expected at least one code to score")
    if max_train < 1:
        raise ValueError(f"max_train = {max_train}; expected at least 1")
    if len(z_tr) > max_train:
        keep = np.sort(np.random.default_rng(seed).choice(len(z_tr), max_train, replace=False))
        z_tr, y_tr = z_tr[keep], y_tr[keep]
    if not 1 <= k < len(z_tr):
        raise ValueError(f"k = {k} needs 1 <= k < the number of training codes ({len(z_tr)})")
    classes, counts = np.unique(y_tr, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"target {target!r} has a single class {classes.tolist()} in the training codes; "
                         "a probe needs at least two")
    knn = KNeighborsClassifier(n_neighbors=k).fit(z_tr, y_tr)
    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(z_tr, y_tr)
    return ProbeResult(
        target=target,
        knn_accuracy=float(np.mean(knn.predict(z_te) == y_te)),
        logistic_accuracy=float(np.mean(logistic.predict(z_te) == y_te)),
        majority_accuracy=float(np.mean(y_te == classes[counts.argmax()])),
        n_train=len(z_tr),
        n_test=len(z_te),
    )
