"""encode_images / decode_latents against the linear fake, whose codes are known in closed form."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from fakes import LinearFake, random_images

from latentspace.data import transforms
from latentspace.data.transforms import BATCH_VALUES, MAX_ROWS, batch_rows
from latentspace.latent.codes import decode_latents, encode_images
from latentspace.utils.device import channels_last


class Recorder:
    def __init__(self) -> None:
        self.total, self.advanced, self.closed = None, 0, False

    def start(self, total, description):
        self.total = total

    def advance(self, n=1, **info):
        self.advanced += n

    def close(self):
        self.closed = True


def test_encode_gives_posterior_means_in_closed_form():
    model = LinearFake((1, 4, 4), latent_dim=6)
    images = random_images(25, (1, 4, 4))
    z = encode_images(model, images, batch_size=7)
    expected = (images.reshape(25, 16) / 255.0 - 0.5) @ model.q.double().numpy()
    assert z.dtype == np.float32 and z.shape == (25, 6)
    np.testing.assert_allclose(z, expected, atol=1e-6)
    np.testing.assert_array_equal(z, encode_images(model, images, batch_size=1000))


def test_decode_inverts_encode_for_a_full_rank_linear_model():
    model = LinearFake((1, 4, 4))
    images = random_images(30, (1, 4, 4), seed=3)
    back = decode_latents(model, encode_images(model, images), batch_size=8)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, images)


def test_sampling_uses_the_generator_and_the_posterior_std():
    model = LinearFake((1, 4, 4), std=0.1)
    images = random_images(400, (1, 4, 4))
    mean = encode_images(model, images)
    a = encode_images(model, images, sample=True, generator=torch.Generator().manual_seed(1))
    b = encode_images(model, images, sample=True, generator=torch.Generator().manual_seed(1))
    c = encode_images(model, images, sample=True, generator=torch.Generator().manual_seed(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.std(a - mean) == pytest.approx(0.1, rel=0.05)


def test_training_flags_are_restored_and_inference_runs_in_eval():
    model = LinearFake((1, 2, 2))
    model.train()
    frozen = torch.nn.Identity()
    frozen.eval()
    model.add_module("frozen", frozen)  # a submodule the caller left in eval mode must stay so
    z = encode_images(model, random_images(3))
    decode_latents(model, z)
    assert model.calls_in_training_mode == 0
    assert model.training and not frozen.training


def test_progress_sees_every_image():
    model = LinearFake((1, 2, 2))
    rec = Recorder()
    encode_images(model, random_images(23), batch_size=5, progress=rec)
    assert (rec.total, rec.advanced, rec.closed) == (23, 23, True)


def test_shape_errors_name_both_sides():
    model = LinearFake((1, 4, 4))
    with pytest.raises(ValueError, match=r"\(1, 2, 2\).*\(1, 4, 4\)"):
        encode_images(model, random_images(2, (1, 2, 2)))
    with pytest.raises(ValueError, match="uint8"):
        encode_images(model, random_images(2, (1, 4, 4)).astype(np.float32))
    with pytest.raises(ValueError, match="latent has 15 values, model expects 16"):
        decode_latents(model, np.zeros((2, 15), np.float32))
    with pytest.raises(ValueError, match=r"z\[None\]"):
        decode_latents(model, np.zeros(16, np.float32))


def test_default_batches_shrink_with_the_image_and_stay_bounded(monkeypatch):
    assert batch_rows((3, 64, 64)) == BATCH_VALUES // (3 * 64 * 64) < batch_rows((1, 64, 64)) <= MAX_ROWS
    assert batch_rows((1, 28, 28)) == MAX_ROWS and batch_rows((1, 28, 28), at_most=100) == 100
    assert batch_rows((3, 4096, 4096)) == 1  # one image too big for the budget still gets a batch
    sizes = []
    model = LinearFake((1, 8, 8), latent_dim=4)
    model.encode = lambda x, _enc=model.encode: sizes.append(len(x)) or _enc(x)
    monkeypatch.setattr(transforms, "BATCH_VALUES", 64 * 30)  # 30 images of 8x8 per batch
    encode_images(model, random_images(70, (1, 8, 8)))
    assert sizes == [30, 30, 10]


def test_inference_layout_keeps_the_images_and_codes_of_a_conv_model():
    from latentspace.models import ModelConfig, build  # a real conv net: the layout only matters for 4-D weights

    model = build(ModelConfig(image_shape=(3, 16, 16), latent_dim=4, width=4, hidden=16)).eval()
    images = random_images(20, (3, 16, 16), seed=4)
    z = np.random.default_rng(5).standard_normal((20, 4)).astype(np.float32)
    codes, decoded = encode_images(model, images), decode_latents(model, z)
    assert channels_last(model) is model
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in model.parameters() if p.dim() == 4)
    np.testing.assert_allclose(encode_images(model, images), codes, atol=1e-5)
    assert np.abs(decode_latents(model, z).astype(int) - decoded).max() <= 1  # a rounding step at most
