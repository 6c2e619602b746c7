"""lerp / slerp invariants and interpolation paths through the linear fake, where latent and pixel paths agree."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from fakes import LinearFake, random_images

from latentspace.latent.interpolate import interpolation_paths, lerp, pixel_path, slerp


def _pair(d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(d, generator=g, dtype=torch.float64), 2.5 * torch.randn(d, generator=g, dtype=torch.float64)


def test_lerp_shapes_and_exact_endpoints():
    z0, z1 = _pair()
    t = torch.linspace(0, 1, 7, dtype=torch.float64)
    path = lerp(z0, z1, t)
    assert path.shape == (7, 8)
    assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)
    torch.testing.assert_close(lerp(z0, z1, 0.25), 0.75 * z0 + 0.25 * z1)


def test_slerp_endpoints_exact_and_norms_linear_between_the_ends():
    z0, z1 = _pair()
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    path = slerp(z0, z1, t)
    assert path.shape == (11, 8)
    assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)
    norms = torch.linalg.vector_norm(path, dim=1)
    r0, r1 = z0.norm(), z1.norm()
    torch.testing.assert_close(norms, (1 - t) * r0 + t * r1)
    assert (norms >= torch.minimum(r0, r1) - 1e-12).all() and (norms <= torch.maximum(r0, r1) + 1e-12).all()


def _cos(a, b):
    return (a @ b) / (a.norm(dim=-1) * b.norm())


def test_slerp_moves_the_angle_at_constant_speed_in_the_plane_of_the_ends():
    z0, z1 = _pair(seed=1)
    t = torch.linspace(0, 1, 9, dtype=torch.float64)
    path = slerp(z0, z1, t)
    omega = torch.arccos(_cos(z0, z1))
    torch.testing.assert_close(torch.arccos(_cos(path, z0).clamp(-1, 1)), t * omega)
    basis, _ = torch.linalg.qr(torch.stack([z0, z1], 1))
    torch.testing.assert_close(path @ basis @ basis.T, path)  # never leaves span(z0, z1)


def test_slerp_keeps_norms_lerp_does_not():
    z0 = torch.tensor([3.0, 0.0])
    z1 = torch.tensor([0.0, 3.0])
    mid_s, mid_l = slerp(z0, z1, 0.5), lerp(z0, z1, 0.5)
    torch.testing.assert_close(mid_s, torch.tensor([3.0, 3.0]) / 2**0.5)
    assert mid_l.norm() == pytest.approx(3 / 2**0.5)


@pytest.mark.parametrize("factor", [2.0, -3.0, 0.0])
def test_slerp_falls_back_to_lerp_for_parallel_antiparallel_and_zero(factor):
    z0 = torch.tensor([1.0, -2.0, 0.5])
    z1 = factor * z0
    t = torch.linspace(0, 1, 5)
    torch.testing.assert_close(slerp(z0, z1, t), lerp(z0, z1, t))


def test_pixel_path_midpoint_is_the_mean_image():
    x0, x1 = torch.rand(1, 4, 4), torch.rand(1, 4, 4)
    path = pixel_path(x0, x1, torch.linspace(0, 1, 5))
    assert path.shape == (5, 1, 4, 4)
    torch.testing.assert_close(path[2], (x0 + x1) / 2)


def test_interpolation_paths_through_a_linear_model_match_the_pixel_path():
    model = LinearFake((1, 4, 4))
    model.train()
    a, b = random_images(2, (1, 4, 4), seed=5)
    paths = interpolation_paths(model, a, b, steps=6)
    assert paths.t.shape == (6,) and paths.z_lerp.shape == (6, 16) and paths.z_slerp.shape == (6, 16)
    for p in (paths.pixel, paths.lerp, paths.slerp):
        assert p.shape == (6, 1, 4, 4) and p.dtype == np.uint8
    np.testing.assert_array_equal(paths.pixel[0], a)
    np.testing.assert_array_equal(paths.pixel[-1], b)
    np.testing.assert_array_equal(paths.slerp[[0, -1]], np.stack([a, b]))
    # decode(lerp(encode a, encode b)) == lerp(a, b) for a linear model; rounding may differ by one level.
    assert np.abs(paths.lerp.astype(int) - paths.pixel.astype(int)).max() <= 1
    z = (np.stack([a, b]).reshape(2, 16) / 255.0 - 0.5) @ model.q.double().numpy()
    np.testing.assert_allclose(paths.z_lerp[[0, -1]], z, atol=1e-6)
    assert model.training and model.calls_in_training_mode == 0


def test_interpolation_paths_refuses_one_step():
    model = LinearFake((1, 2, 2))
    a, b = random_images(2)
    with pytest.raises(ValueError, match="steps"):
        interpolation_paths(model, a, b, steps=1)
