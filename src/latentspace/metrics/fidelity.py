"""Improved precision and recall (Kynkäänniemi et al. 2019, "Improved precision and recall metric for assessing
generative models").

Each feature set stands for a manifold: the union of balls around its points, each ball's radius the distance from
the point to its k-th nearest neighbour within the same set (itself excluded). Precision is the fraction of fake
points inside the real manifold (are samples realistic?); recall is the fraction of real points inside the fake
manifold (is the data covered?). Both in [0, 1], higher is better.

Distances are Euclidean, computed in float64 in row chunks so that 10k x 10k sets need tens of MB, not GB.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK_ELEMENTS = 1 << 22  # distances held at once (4M float64 = 32 MB)


@dataclass(frozen=True)
class PrecisionRecall:
    """precision: fraction of fake points in the real manifold; recall: fraction of real points in the fake
    manifold; both in [0, 1]. k: the neighbour whose distance sets each ball's radius."""

    precision: float
    recall: float
    k: int


def _check(x: np.ndarray, which: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{which} must be (N, F) features, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{which} holds non-finite values; expected finite features")
    return a


def _chunks(n_rows: int, n_cols: int):
    step = max(1, CHUNK_ELEMENTS // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def _distances(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """Euclidean distances (len(a), len(b)) from the expansion |a|^2 + |b|^2 - 2ab, clamped at 0."""
    d2 = (a * a).sum(1)[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(d2, 0.0))


def knn_radii(points: np.ndarray, k: int) -> np.ndarray:
    """(N,) distance from each of points (N, F) to its k-th nearest other point in the set (k in [1, N-1])."""
    x = _check(points, "points")
    if not 1 <= k < len(x):
        raise ValueError(f"k = {k} needs 1 <= k < the set's size {len(x)}")
    sq = (x * x).sum(1)
    radii = np.empty(len(x))
    for rows in _chunks(len(x), len(x)):
        d = _distances(x[rows], x, sq)
        d[np.arange(d.shape[0]), np.arange(rows.start, rows.stop)] = 0.0  # self is the 0-th neighbour, exactly
        radii[rows] = np.partition(d, k, axis=1)[:, k]
    return radii


def inside_manifold(queries: np.ndarray, points: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """(Q,) bool: whether each query (Q, F) lies within radii[i] of some points[i] ((N, F), radii (N,))."""
    q, x = _check(queries, "queries"), _check(points, "points")
    sq = (x * x).sum(1)
    inside = np.empty(len(q), bool)
    for rows in _chunks(len(q), len(x)):
        inside[rows] = (_distances(q[rows], x, sq) <= radii[None, :]).any(1)
    return inside


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> PrecisionRecall:
    """Improved precision and recall of fake features (M, F) against real features (N, F), k-NN balls.

    k must be at least 1 and smaller than both set sizes (the paper uses k = 3 on 50k points; smaller sets give
    smaller balls, so compare numbers only at equal set sizes and k).
    """
    r, f = _check(real, "real"), _check(fake, "fake")
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"real has {r.shape[1]} features per row, fake has {f.shape[1]}; expected the same")
    if not 1 <= k < min(len(r), len(f)):
        raise ValueError(f"k = {k} needs 1 <= k < both set sizes (real {len(r)}, fake {len(f)})")
    precision = inside_manifold(f, r, knn_radii(r, k)).mean()
    recall = inside_manifold(r, f, knn_radii(f, k)).mean()
    return PrecisionRecall(precision=float(precision), recall=float(recall), k=k)
