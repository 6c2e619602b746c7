"""Which latent axis holds which factor of variation: mutual information between codes and known factors,
and the Mutual Information Gap (Chen et al. 2018, "Isolating sources of disentanglement in VAEs").

Pure functions over arrays, following google-research/disentanglement_lib (evaluation/metrics/mig.py):
codes are discretised into equal-width histogram bins and MI is the plug-in estimate of
sklearn.metrics.mutual_info_score, in nats. Continuous factors are discretised the same way; discrete
factors (value indices) are used as they are.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import mutual_info_score

HOLDS_THRESHOLD = 0.2  # normalised MI an axis needs to be said to hold a factor


def discretize(x: np.ndarray, bins: int = 20) -> np.ndarray:
    """Each column of x (N, K) -> bin indices (N, K) int64 over ``bins`` equal-width bins of its range."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"discretize expects (N, K), got shape {x.shape}")
    out = np.empty(x.shape, dtype=np.int64)
    for j in range(x.shape[1]):
        edges = np.histogram_bin_edges(x[:, j], bins=bins)
        out[:, j] = np.digitize(x[:, j], edges[1:-1])
    return out


def _discrete_factors(factors: np.ndarray, discrete_factor_mask: Sequence[bool] | None, bins: int) -> np.ndarray:
    f = np.asarray(factors, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"factors must be (N, F), got shape {f.shape}")
    mask = np.zeros(f.shape[1], bool) if discrete_factor_mask is None else np.asarray(discrete_factor_mask, bool)
    if mask.shape != (f.shape[1],):
        raise ValueError(f"discrete_factor_mask must have {f.shape[1]} entries (one per factor), got {mask.shape}")
    out = discretize(f, bins)
    out[:, mask] = np.rint(f[:, mask]).astype(np.int64)
    return out


def _check_pair(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    c = np.asarray(codes, dtype=np.float64)
    if c.ndim != 2 or len(c) != len(factors):
        raise ValueError(f"codes must be (N, D) with the factors' N = {len(factors)}, got shape {c.shape}")
    return c


def mutual_information_matrix(
    codes: np.ndarray, factors: np.ndarray, discrete_factor_mask: Sequence[bool] | None = None, bins: int = 20,
) -> np.ndarray:
    """I(code_d; factor_f) in nats, (D, F), from codes (N, D) and factors (N, F)."""
    f = _discrete_factors(factors, discrete_factor_mask, bins)
    c = discretize(_check_pair(codes, f), bins)
    return np.array([[mutual_info_score(f[:, j], c[:, i]) for j in range(f.shape[1])] for i in range(c.shape[1])])


def factor_entropy(
    factors: np.ndarray, discrete_factor_mask: Sequence[bool] | None = None, bins: int = 20,
) -> np.ndarray:
    """H(factor_f) in nats, (F,), of the (discretised) factors."""
    f = _discrete_factors(factors, discrete_factor_mask, bins)
    return np.array([mutual_info_score(f[:, j], f[:, j]) for j in range(f.shape[1])])


def normalized_mi(
    codes: np.ndarray, factors: np.ndarray, discrete_factor_mask: Sequence[bool] | None = None, bins: int = 20,
) -> np.ndarray:
    """I(code_d; factor_f) / H(factor_f), (D, F) in [0, 1]. A constant factor (H = 0) is an error."""
    entropy = factor_entropy(factors, discrete_factor_mask, bins)
    if (entropy <= 0).any():
        raise ValueError(f"factor column(s) {np.flatnonzero(entropy <= 0).tolist()} are constant: entropy 0, "
                         "so their mutual information cannot be normalised; drop them")
    return mutual_information_matrix(codes, factors, discrete_factor_mask, bins) / entropy


def mig_from_normalized(nmi: np.ndarray) -> float:
    """Mean over factors of (largest - second largest) normalised MI over axes; nmi (D, F), D >= 2."""
    if nmi.shape[0] < 2:
        raise ValueError(f"MIG needs at least 2 latent axes, got {nmi.shape[0]}")
    top = np.sort(nmi, axis=0)[::-1]
    return float(np.mean(top[0] - top[1]))


def mig(
    codes: np.ndarray, factors: np.ndarray, discrete_factor_mask: Sequence[bool] | None = None, bins: int = 20,
) -> float:
    """Mutual Information Gap in [0, 1]: 1 when each factor lives in exactly one axis, 0 when in none."""
    return mig_from_normalized(normalized_mi(codes, factors, discrete_factor_mask, bins))


@dataclass(frozen=True)
class AxisFactorTable:
    """Which axis holds which factor. matrix: (D, F) normalised MI. best_axis / best_score: (F,), the axis
    with the most information about each factor. holds: per axis, the factor name whose normalised MI is
    largest if it reaches ``threshold``, else None. mig: the Mutual Information Gap of ``matrix``."""

    matrix: np.ndarray
    factor_names: tuple[str, ...]
    best_axis: tuple[int, ...]
    best_score: tuple[float, ...]
    holds: tuple[str | None, ...]
    threshold: float
    mig: float

    @property
    def columns(self) -> tuple[str, ...]:
        """Header for ``rows()``."""
        return ("axis", *self.factor_names, "holds")

    def rows(self) -> list[tuple[str, ...]]:
        """One row per axis: its name, its normalised MI with each factor (3 decimals), the factor it holds or '-'."""
        return [
            (f"z{i}", *(f"{v:.3f}" for v in self.matrix[i]), self.holds[i] or "-")
            for i in range(self.matrix.shape[0])
        ]


def axis_factor_table(
    codes: np.ndarray, factors: np.ndarray, factor_names: Sequence[str],
    discrete_factor_mask: Sequence[bool] | None = None, bins: int = 20, threshold: float = HOLDS_THRESHOLD,
) -> AxisFactorTable:
    """Normalised MI of every axis with every factor, the best axis per factor and the factor each axis holds."""
    names = tuple(factor_names)
    if len(names) != np.shape(factors)[1]:
        raise ValueError(f"factor_names has {len(names)} names for {np.shape(factors)[1]} factor columns")
    nmi = normalized_mi(codes, factors, discrete_factor_mask, bins)
    best = nmi.argmax(0)
    strongest = nmi.argmax(1)
    holds = tuple(names[j] if nmi[i, j] >= threshold else None for i, j in enumerate(strongest))
    return AxisFactorTable(
        matrix=nmi, factor_names=names, best_axis=tuple(int(b) for b in best),
        best_score=tuple(float(nmi[b, j]) for j, b in enumerate(best)), holds=holds, threshold=threshold,
        mig=mig_from_normalized(nmi) if nmi.shape[0] >= 2 else float("nan"),
    )
