"""SAP, the Separated Attribute Predictability score (Kumar et al. 2018, "Variational inference of disentangled
latent concepts from unlabeled observations"), following google-research/disentanglement_lib
(evaluation/metrics/sap_score.py).

A score matrix S (D codes x F factors) says how well each single code axis predicts each factor:
- discrete factor: test accuracy of sklearn's LinearSVC(C=0.01, class_weight="balanced") fitted on that one axis
  of the training codes;
- continuous factor: R^2 of a linear fit of the factor on that one axis, i.e. the squared Pearson correlation,
  computed on the training split as disentanglement_lib does (0 for a constant axis).
SAP is the mean over factors of the gap between the best and second-best axis: in [0, 1], higher means each factor
is predictable from one axis and not from the others. A 1-D linear classifier cannot pick out a middle value of a
many-valued factor, so discrete SAP favours factors with few values; compare SAP between runs on one dataset.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.svm import LinearSVC

from latentspace.metrics.dci import check_pair_of_splits


def squared_correlation(code: np.ndarray, factor: np.ndarray) -> float:
    """R^2 of the least-squares line factor ~ a * code + b, in [0, 1]; code and factor (N,). 0 if either is constant."""
    cov = np.cov(code, factor, ddof=1)
    if cov[0, 0] <= 1e-12 or cov[1, 1] <= 1e-12:
        return 0.0
    return float(cov[0, 1] ** 2 / (cov[0, 0] * cov[1, 1]))


def single_axis_accuracy(
    code_train: np.ndarray, y_train: np.ndarray, code_test: np.ndarray, y_test: np.ndarray,
) -> float:
    """Test accuracy in [0, 1] of a balanced linear SVM fitted on one code axis (N,) to class indices (N,)."""
    if len(np.unique(y_train)) < 2:
        return float(np.mean(y_test == y_train[0]))  # one class seen: predicting it is all a classifier can do
    classifier = LinearSVC(C=0.01, class_weight="balanced")
    classifier.fit(code_train[:, None], y_train)
    return float(np.mean(classifier.predict(code_test[:, None]) == y_test))


def sap_score_matrix(
    codes_train: np.ndarray, factors_train: np.ndarray, codes_test: np.ndarray, factors_test: np.ndarray,
    discrete_factor_mask: Sequence[bool] | None = None,
) -> np.ndarray:
    """(D, F) predictability of each factor from each single axis, in [0, 1] (see the module docstring)."""
    c_tr, f_tr, c_te, f_te, mask = check_pair_of_splits(
        codes_train, factors_train, codes_test, factors_test, discrete_factor_mask)
    scores = np.zeros((c_tr.shape[1], f_tr.shape[1]))
    for j in range(f_tr.shape[1]):
        if mask[j]:
            y_tr, y_te = np.rint(f_tr[:, j]).astype(np.int64), np.rint(f_te[:, j]).astype(np.int64)
            scores[:, j] = [single_axis_accuracy(c_tr[:, i], y_tr, c_te[:, i], y_te) for i in range(c_tr.shape[1])]
        else:
            scores[:, j] = [squared_correlation(c_tr[:, i], f_tr[:, j]) for i in range(c_tr.shape[1])]
    return scores


def sap_from_matrix(scores: np.ndarray) -> float:
    """Mean over factors of (best - second best) score over axes; scores (D, F) with D >= 2."""
    if scores.shape[0] < 2:
        raise ValueError(f"SAP needs at least 2 code axes, got {scores.shape[0]}")
    top = np.sort(scores, axis=0)
    return float(np.mean(top[-1] - top[-2]))


def sap(
    codes_train: np.ndarray, factors_train: np.ndarray, codes_test: np.ndarray, factors_test: np.ndarray,
    discrete_factor_mask: Sequence[bool] | None = None,
) -> float:
    """SAP score in [0, 1] of codes (N, D) against factors (N, F); discrete_factor_mask (F,) marks the factor
    columns that hold value indices (None: all continuous). Higher is better."""
    return sap_from_matrix(sap_score_matrix(codes_train, factors_train, codes_test, factors_test,
                                            discrete_factor_mask))
