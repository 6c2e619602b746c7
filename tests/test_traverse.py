"""Traversals: one axis swept per row, decoded through the linear fake."""
from __future__ import annotations

import numpy as np
import pytest
from fakes import LinearFake

from latentspace.latent.codes import decode_latents
from latentspace.latent.traverse import DEFAULT_VALUES, traversal_grid, traversal_latents


def test_each_row_sweeps_only_its_axis():
    z0 = np.arange(5, dtype=np.float32)
    z = traversal_latents(z0, axes=[1, 3], values=[-1.0, 0.0, 2.0])
    assert z.shape == (2, 3, 5)
    np.testing.assert_array_equal(z[0, :, 1], [-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(z[1, :, 3], [-1.0, 0.0, 2.0])
    keep = np.ones(5, bool)
    for row, axis in enumerate([1, 3]):
        keep[:] = True
        keep[axis] = False
        np.testing.assert_array_equal(z[row][:, keep], np.broadcast_to(z0[keep], (3, 4)))


def test_relative_values_are_offsets_from_the_code():
    z0 = np.array([0.5, -1.0], np.float32)
    z = traversal_latents(z0, values=[-1.0, 1.0], relative=True)
    np.testing.assert_allclose(z[0, :, 0], [-0.5, 1.5])
    np.testing.assert_allclose(z[1, :, 1], [-2.0, 0.0])


def test_default_values_and_bad_axes():
    assert len(DEFAULT_VALUES) == 9 and DEFAULT_VALUES[0] == -2.5 and DEFAULT_VALUES[-1] == 2.5
    assert traversal_latents(np.zeros(4)).shape == (4, 9, 4)
    with pytest.raises(ValueError, match="0..3"):
        traversal_latents(np.zeros(4), axes=[4])


def test_grid_decodes_every_cell():
    model = LinearFake((1, 4, 4), latent_dim=3)
    z0 = np.array([0.1, -0.2, 0.3], np.float32)
    grid = traversal_grid(model, z0, values=[-1.0, 0.0, 1.0])
    assert grid.shape == (3, 3, 1, 4, 4) and grid.dtype == np.uint8
    codes = traversal_latents(z0, values=[-1.0, 0.0, 1.0]).reshape(9, 3)
    np.testing.assert_array_equal(grid.reshape(9, 1, 4, 4), decode_latents(model, codes))
    assert not np.array_equal(grid[0, 0], grid[0, 2])  # sweeping an axis changes the picture
