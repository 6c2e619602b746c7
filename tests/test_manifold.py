"""Manifold grids and 2-D maps: quantile grid values, planes through codes, the PCA plane of planted data."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from latentspace.latent.manifold import pca_plane_grid, plane_basis, plane_grid, prior_quantile_grid, project_2d


def test_quantile_grid_is_symmetric_monotone_and_in_picture_order():
    k = 20
    grid = prior_quantile_grid(k)
    assert grid.shape == (k * k, 2) and grid.dtype == np.float32
    g = grid.reshape(k, k, 2)
    x, y = g[0, :, 0], g[:, 0, 1]
    np.testing.assert_array_equal(g[..., 0], np.broadcast_to(x, (k, k)))  # x constant down columns
    np.testing.assert_array_equal(g[..., 1], np.broadcast_to(y[:, None], (k, k)))  # y constant along rows
    assert (np.diff(x) > 0).all() and (np.diff(y) < 0).all()  # right is larger x, up is larger y
    np.testing.assert_allclose(x, -x[::-1], atol=1e-6)
    np.testing.assert_allclose(x[[0, -1]], [-1.6448536, 1.6448536], atol=1e-6)  # N(0,1) 5% / 95% quantiles


def test_quantile_grid_rejects_bounds_outside_the_unit_interval():
    with pytest.raises(ValueError, match="bounds"):
        prior_quantile_grid(10, (0.0, 0.9))


def _three(d=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(d), rng.standard_normal(d), rng.standard_normal(d)


def test_plane_grid_lies_on_the_plane_and_covers_the_three_codes():
    a, b, c = _three()
    k = 11
    grid = plane_grid(a, b, c, k=k, extent=1.5)
    assert grid.shape == (k * k, 6)
    basis = plane_basis(a, b, c)
    np.testing.assert_allclose(basis @ basis.T, np.eye(2), atol=1e-12)
    off = grid - a
    np.testing.assert_allclose(off - off @ basis.T @ basis, 0.0, atol=1e-5)  # nothing leaves the plane
    g = grid.reshape(k, k, -1)
    cell = np.linalg.norm(g[0, 1] - g[0, 0])
    np.testing.assert_allclose(np.linalg.norm(g[1, 0] - g[0, 0]), cell, rtol=1e-5)  # square cells
    for z in (a, b, c):
        assert np.linalg.norm(grid - z, axis=1).min() <= cell * np.sqrt(2) / 2 + 1e-6


def test_plane_basis_points_towards_b_then_c_and_refuses_collinear_codes():
    a = np.zeros(3)
    basis = plane_basis(a, np.array([2.0, 0, 0]), np.array([1.0, 3.0, 0]))
    np.testing.assert_allclose(basis, [[1, 0, 0], [0, 1, 0]], atol=1e-12)
    with pytest.raises(ValueError, match="collinear"):
        plane_basis(a, np.array([1.0, 1, 1]), np.array([2.0, 2, 2]))


def _planar(n=500, seed=0):
    """Codes on a known plane (std 5 along e0, 2 along e1) plus small noise, away from the origin."""
    rng = np.random.default_rng(seed)
    e, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    e0, e1 = e[:, 0], e[:, 1]
    mean = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    z = mean + np.outer(5 * rng.standard_normal(n), e0) + np.outer(2 * rng.standard_normal(n), e1)
    return z + 0.01 * rng.standard_normal((n, 5)), e0, e1


def test_pca_plane_spans_the_dominant_plane_at_the_right_extent():
    z, e0, e1 = _planar()
    grid = pca_plane_grid(z, k=9, extent=2.5)
    assert grid.shape == (81, 5)
    off = grid - z.mean(0)
    span = np.stack([e0, e1])
    np.testing.assert_allclose(off - off @ span.T @ span, 0.0, atol=0.05)
    np.testing.assert_allclose(np.abs(off @ e0).max(), 2.5 * z.dot(e0).std(), rtol=0.02)
    np.testing.assert_allclose(np.abs(off @ e1).max(), 2.5 * z.dot(e1).std(), rtol=0.02)


def test_pca_projection_keeps_distances_of_planar_data():
    z, _, _ = _planar(200)
    p = project_2d(z, "pca")
    assert p.shape == (200, 2) and p.dtype == np.float32
    dz = np.linalg.norm(z[:, None] - z[None], axis=2)
    dp = np.linalg.norm(p[:, None] - p[None], axis=2)
    np.testing.assert_allclose(dp, dz, atol=0.1)


def test_tsne_is_seeded_and_separates_clusters():
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.standard_normal((30, 6)), rng.standard_normal((30, 6)) + 20])
    p = project_2d(z, "tsne", seed=1)
    np.testing.assert_array_equal(p, project_2d(z, "tsne", seed=1))
    gap = np.linalg.norm(p[:30].mean(0) - p[30:].mean(0))
    assert gap > 3 * max(p[:30].std(0).max(), p[30:].std(0).max())


@pytest.mark.skipif(importlib.util.find_spec("umap") is not None, reason="umap-learn is installed")
def test_umap_without_the_package_says_how_to_get_it():
    with pytest.raises(ValueError, match="pip install umap-learn"):
        project_2d(np.zeros((10, 4)), "umap")


def test_default_plane_skips_anchors_whose_codes_coincide():
    from latentspace.api.maps import spanning

    z = np.zeros((6, 4), np.float32)  # a discrete model: images 0-2 share one code
    z[3, 0], z[4, 1], z[5, 2] = 1.0, 1.0, 1.0
    assert spanning(z, (0, 1, 2)) == (0, 3, 4)  # keeps as much of the preferred triple as spans a plane
    assert spanning(z, (0, 3, 4)) == (0, 3, 4)
