"""Grids of latent points to decode as a picture of the learned manifold, and 2-D maps of many codes.

Grids are returned row-major with k points per row: point r * k + c is row r, column c of the picture,
x growing to the right and y growing upwards (row 0 is the top), as in Kingma & Welling (2014), fig. 4.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

PROJECTIONS = ("pca", "tsne", "umap")
TSNE_EXACT_MAX = 1000


def _grid(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(k*k, 2) points (u[c], v[k-1-r]) in picture order (see the module docstring)."""
    uu, vv = np.meshgrid(u, v[::-1])
    return np.stack([uu.ravel(), vv.ravel()], axis=1)


def prior_quantile_grid(k: int = 20, bounds: tuple[float, float] = (0.05, 0.95)) -> np.ndarray:
    """(k*k, 2) float32 points at the standard normal's quantiles linspace(*bounds, k) on both axes.

    Equal steps in probability, so every row and column covers equal prior mass (for a 2-D latent).
    """
    lo, hi = bounds
    if k < 2 or not 0.0 < lo < hi < 1.0:
        raise ValueError(f"prior_quantile_grid needs k >= 2 and 0 < lo < hi < 1, got k={k}, bounds={bounds}")
    q = torch.special.ndtri(torch.linspace(lo, hi, k, dtype=torch.float64)).numpy()
    return _grid(q, q).astype(np.float32)


def plane_basis(z_a: np.ndarray, z_b: np.ndarray, z_c: np.ndarray) -> np.ndarray:
    """Orthonormal (2, D) basis of the plane through three codes: (z_b - z_a), then (z_c - z_a) Gram-Schmidt."""
    a, b, c = (np.asarray(z, dtype=np.float64) for z in (z_a, z_b, z_c))
    if not a.ndim == 1 or a.shape != b.shape or a.shape != c.shape:
        raise ValueError(f"plane needs three (D,) codes, got {a.shape}, {b.shape}, {c.shape}")
    q, r = np.linalg.qr(np.stack([b - a, c - a], axis=1))
    if abs(r[0, 0]) < 1e-9 or abs(r[1, 1]) < 1e-9 * max(1.0, abs(r[0, 0])):
        raise ValueError("the three codes are (nearly) collinear: they do not span a plane")
    return (q * np.sign(np.diag(r))).T  # signs fixed so axis 1 points to z_b and axis 2 towards z_c


def plane_grid(z_a: np.ndarray, z_b: np.ndarray, z_c: np.ndarray, k: int = 10, extent: float = 1.5) -> np.ndarray:
    """(k*k, D) float32 points on the plane through three codes, origin z_a.

    The grid is the square around the three points' bounding box (in the plane's orthonormal coordinates),
    its side ``extent`` times the box's larger side, so all three lie inside it.
    """
    if k < 2 or extent < 1.0:
        raise ValueError(f"plane_grid needs k >= 2 and extent >= 1, got k={k}, extent={extent}")
    a = np.asarray(z_a, dtype=np.float64)
    basis = plane_basis(z_a, z_b, z_c)
    coords = (np.stack([a, z_b, z_c]).astype(np.float64) - a) @ basis.T  # (3, 2)
    lo, hi = coords.min(0), coords.max(0)
    centre, half = (lo + hi) / 2, extent * (hi - lo).max() / 2
    axis = np.linspace(-half, half, k)
    uv = _grid(centre[0] + axis, centre[1] + axis)
    return (a + uv @ basis).astype(np.float32)


def pca_plane_grid(latents: np.ndarray, k: int = 10, extent: float = 2.5) -> np.ndarray:
    """(k*k, D) float32 points on the plane of the codes' first two principal components through their mean,
    ``extent`` standard deviations of each component either side."""
    z = np.asarray(latents, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 2 or len(z) < 3:
        raise ValueError(f"pca_plane_grid needs codes (N >= 3, D >= 2), got {z.shape}")
    if k < 2 or extent <= 0:
        raise ValueError(f"pca_plane_grid needs k >= 2 and extent > 0, got k={k}, extent={extent}")
    pca = PCA(n_components=2, svd_solver="full").fit(z)
    std = np.sqrt(pca.explained_variance_)
    axis = np.linspace(-extent, extent, k)
    uv = _grid(axis * std[0], axis * std[1])
    return (pca.mean_ + uv @ pca.components_).astype(np.float32)


def project_2d(latents: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Codes (N, D) -> (N, 2) float32 map by PCA, t-SNE or UMAP (umap-learn, if installed); seeded."""
    if method not in PROJECTIONS:
        raise ValueError(f"method must be one of {', '.join(PROJECTIONS)}, got {method!r}")
    z = np.asarray(latents, dtype=np.float32)
    if z.ndim != 2 or len(z) < 3:
        raise ValueError(f"project_2d needs codes (N >= 3, D), got {z.shape}")
    if z.shape[1] <= 2:
        return np.pad(z, ((0, 0), (0, 2 - z.shape[1]))).astype(np.float32)  # already a 2-D map
    if method == "pca":
        return PCA(n_components=2, svd_solver="full").fit_transform(z).astype(np.float32)
    if method == "tsne":
        perplexity = min(30.0, (len(z) - 1) / 3)
        # Barnes-Hut pays off only for thousands of points; below that the exact gradient is faster and exact.
        solver = "exact" if len(z) <= TSNE_EXACT_MAX else "barnes_hut"
        tsne = TSNE(2, perplexity=perplexity, init="pca", method=solver, random_state=seed)
        return tsne.fit_transform(z).astype(np.float32)
    if importlib.util.find_spec("umap") is None:
        raise ValueError("method 'umap' needs the umap-learn package: pip install umap-learn (or use 'pca' or 'tsne')")
    import umap

    return umap.UMAP(n_components=2, random_state=seed).fit_transform(z).astype(np.float32)


def shepard_map(points: np.ndarray, values: np.ndarray, queries: np.ndarray, k: int = 8) -> np.ndarray:
    """Values at ``queries`` (Q, P) interpolated from ``values`` (N, V) known at ``points`` (N, P): (Q, V) float32.

    Modified Shepard interpolation (Franke & Nielson 1980) over the k nearest points: with d_i the distance to
    the i-th nearest point and R the distance to the (k+1)-th,

        w_i = ((R - d_i) / (R d_i))^2,    value = sum_i w_i values_i / sum_i w_i

    so a query on a point gets exactly that point's value, the result is continuous everywhere (a point enters
    or leaves the k nearest with weight 0) and it is a weighted mean of known values: it never leaves their
    range. This is the inverse of a nonlinear map (t-SNE, UMAP) from map positions to codes, and its forward
    direction for new codes (points = codes, values = positions).
    """
    points, values = np.asarray(points, np.float64), np.asarray(values, np.float64)
    queries = np.asarray(queries, np.float64)
    if points.ndim != 2 or values.ndim != 2 or len(points) != len(values) or len(points) == 0:
        raise ValueError(f"shepard_map needs points (N, P) and values (N, V), N >= 1, got {points.shape}, {values.shape}")
    if queries.ndim != 2 or queries.shape[1] != points.shape[1]:
        raise ValueError(f"queries must be (Q, {points.shape[1]}), got {queries.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(k, len(points))
    out = np.empty((len(queries), values.shape[1]), np.float64)
    for start in range(0, len(queries), 256):  # (256, N) distances at a time
        q = queries[start : start + 256]
        d = np.sqrt(((q[:, None, :] - points[None]) ** 2).sum(-1))
        m = min(k + 1, len(points))  # the k nearest and the next, whose distance is R
        part = np.argpartition(d, m - 1, axis=1)[:, :m] if m < len(points) else np.tile(np.arange(m), (len(q), 1))
        part = np.take_along_axis(part, np.argsort(np.take_along_axis(d, part, 1), axis=1, kind="stable"), 1)
        near, dk = part[:, :k], np.take_along_axis(d, part[:, :k], axis=1)
        radius = np.take_along_axis(d, part[:, k : k + 1], axis=1) if k < len(points) else np.full((len(q), 1), np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(np.isinf(radius), 1.0 / dk**2, ((radius - dk) / (radius * dk)) ** 2)
        exact = dk == 0
        w = np.where(exact.any(1, keepdims=True), exact.astype(np.float64), w)
        w = np.where((w.sum(1, keepdims=True) > 0) & np.isfinite(w).all(1, keepdims=True), w, 1.0)  # all k tied
        out[start : start + 256] = np.einsum("qk,qkv->qv", w / w.sum(1, keepdims=True), values[near])
    return out.astype(np.float32)
