"""Generated faces: each factor changes the image where and how its name says, seeding, contract."""
from __future__ import annotations

import numpy as np
import pytest

from latentspace.data import load
from latentspace.data.faces import (
    CONTINUOUS_RANGES,
    DEFAULT_SIZES,
    FACTOR_NAMES,
    FACTOR_VALUES,
    HAIR_RGB,
    LIPS_RGB,
    SKIN_RGB,
    face_layout,
    load_faces,
    render_faces,
    sample_face_factors,
)
from latentspace.data.render import split_counts

N, SIZE = 50, 64
COL = {name: k for k, name in enumerate(FACTOR_NAMES)}


@pytest.fixture(scope="module")
def base() -> np.ndarray:
    return sample_face_factors(N, np.random.default_rng(123))


@pytest.fixture(scope="module")
def grid() -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x), each (SIZE, SIZE)."""
    return tuple(np.mgrid[0:SIZE, 0:SIZE] + 0.5)


def toggled(factors: np.ndarray, **values: float) -> np.ndarray:
    out = factors.copy()
    for name, value in values.items():
        out[:, COL[name]] = value
    return out


def change(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel change mass (N, H, W): summed absolute channel differences."""
    return np.abs(a.astype(np.int32) - b.astype(np.int32)).sum(axis=1)


def share(mass: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Fraction of each image's change mass inside ``region`` (N,); every image must change somewhere."""
    total = mass.sum(axis=(1, 2))
    assert (total > 0).all()
    return (mass * region).sum(axis=(1, 2)) / total


def per_image(v: np.ndarray) -> np.ndarray:
    return v[:, None, None]


def test_imageset_contract():
    faces = load_faces(split="train", n=12, size=32)
    assert faces.name == "faces" and faces.split == "train"
    assert faces.images.shape == (12, 3, 32, 32) and faces.images.dtype == np.uint8
    assert faces.factors.shape == (12, len(FACTOR_NAMES)) and faces.factors.dtype == np.float32
    assert faces.factor_names == FACTOR_NAMES
    assert faces.factor_values == FACTOR_VALUES
    assert faces.images.std(axis=(1, 2, 3)).min() > 20
    assert split_counts(None, None, DEFAULT_SIZES) == {"train": 20_000, "test": 2_000}


def test_factor_sampling_covers_every_value_uniformly():
    f = sample_face_factors(6000, np.random.default_rng(0))
    for name, values in FACTOR_VALUES.items():
        counts = np.bincount(f[:, COL[name]].astype(int), minlength=len(values))
        assert len(counts) == len(values)
        np.testing.assert_allclose(counts / len(f), 1 / len(values), atol=0.025)
    for name, (lo, hi) in CONTINUOUS_RANGES.items():
        column = f[:, COL[name]]
        assert lo <= column.min() < lo + 0.02 * (hi - lo) and hi - 0.02 * (hi - lo) < column.max() <= hi
    assert abs(np.corrcoef(f, rowvar=False)[np.triu_indices(len(FACTOR_NAMES), 1)]).max() < 0.06


@pytest.mark.parametrize("size", [32, 64, 128])
def test_sizes_and_grey(base, size):
    rgb = render_faces(base[:4], size=size)
    grey = render_faces(base[:4], size=size, channels=1)
    assert rgb.shape == (4, 3, size, size) and grey.shape == (4, 1, size, size)
    expected = rgb.astype(np.float64).transpose(0, 2, 3, 1) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(grey[:, 0], expected, atol=1.0)


def test_same_seed_same_faces_and_splits_independent():
    a, b = load_faces(split="train", n=20, size=32, seed=5), load_faces(split="train", n=20, size=32, seed=5)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.factors, b.factors)
    c = load_faces(split="train", n=20, size=32, seed=6)
    assert (c.factors != a.factors).all(axis=1).any() and (c.images != a.images).any(axis=(1, 2, 3)).all()
    longer = load_faces(split="train", n=30, size=32, seed=5)
    np.testing.assert_array_equal(longer.images[:20], a.images)  # the first n never depend on n
    test = load_faces(split="test", n=3, size=32, seed=5)
    both = load_faces(split=None, n=30, size=32, seed=5)
    assert both.split is None and len(both) == 30
    np.testing.assert_array_equal(both.factors, np.concatenate([longer.factors[:27], test.factors]))
    assert not np.isin(test.factors[:, COL["smile"]], longer.factors[:, COL["smile"]]).any()


def test_a_face_does_not_depend_on_its_batch(base):
    batch = render_faces(base)
    for k in (0, 17, 49):
        np.testing.assert_array_equal(render_faces(base[k : k + 1])[0], batch[k])


def test_drawing_on_several_threads_gives_the_same_faces():
    import torch

    factors = sample_face_factors(700, np.random.default_rng(3))  # batches of 128 at 64 px, 512 at 32 px
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = [render_faces(factors, size=s) for s in (32, 64)]
        torch.set_num_threads(3)
        threaded = [render_faces(factors, size=s) for s in (32, 64)]
        assert torch.get_num_threads() == 3  # drawing gives the setting back
    finally:
        torch.set_num_threads(before)
    for one, many in zip(serial, threaded):
        np.testing.assert_array_equal(one, many)


def test_mask_covers_the_lower_face(base, grid):
    y, x = grid
    lay = face_layout(base, SIZE)
    mass = change(render_faces(toggled(base, mask_on=0)), render_faces(toggled(base, mask_on=1)))
    box = (x >= per_image(lay.face_left - 0.25 * lay.unit)) & (x <= per_image(lay.face_right + 0.25 * lay.unit))
    assert share(mass, box & (y > per_image(lay.eye_y))).min() > 0.95
    masked = render_faces(toggled(base, mask_on=1, glasses=0))
    mouth = masked[np.arange(N), :, np.round(lay.mouth_y - 0.5).astype(int), np.round(lay.centre_x - 0.5).astype(int)]
    assert (mouth.min(axis=1) > 150).all() and (mouth[:, 2] > mouth[:, 0]).all()  # light blue/white over the mouth


def test_hair_colour_moves_the_hair_toward_its_name(base):
    renders = [render_faces(toggled(base, hair_color=k)).astype(np.float64) for k in range(5)]
    hair = change(renders[0], renders[2]) > 150  # black vs blond: the hair (and the brows)
    assert hair.sum(axis=(1, 2)).min() > 150
    means = np.stack([(r * hair[:, None]).sum(axis=(2, 3)) / hair.sum(axis=(1, 2))[:, None] for r in renders])
    black, brown, blond, red, grey = means  # each (N, 3)
    bright = means.mean(axis=2)
    assert (red[:, 0] - red[:, 1] > brown[:, 0] - brown[:, 1] + 40).all()
    assert (red[:, 0] - red[:, 1] > blond[:, 0] - blond[:, 1] + 40).all()
    assert (bright[2] > bright[1] + 60).all() and (bright[2] > bright[4]).all()
    assert ((blond[:, 0] + blond[:, 1]) / 2 - blond[:, 2] > (grey[:, 0] + grey[:, 1]) / 2 - grey[:, 2] + 50).all()
    assert (bright[0] < bright[1:].min(axis=0) - 30).all()
    spread = means.max(axis=2) - means.min(axis=2)
    assert (spread[4] < spread[1:4].min(axis=0)).all()  # grey is the least saturated
    for k, rgb in enumerate(HAIR_RGB):  # and each is nearest its own named colour
        nearest = np.linalg.norm(means[k][:, None, :] - np.array(HAIR_RGB)[None], axis=2).argmin(axis=1)
        np.testing.assert_array_equal(nearest, k, err_msg=f"hair colour {FACTOR_VALUES['hair_color'][k]} {rgb}")


def test_glasses_sit_in_the_eye_band(base, grid):
    y, _ = grid
    lay = face_layout(base, SIZE)
    mass = change(render_faces(toggled(base, glasses=0)), render_faces(toggled(base, glasses=1)))
    assert share(mass, np.abs(y - per_image(lay.eye_y)) < per_image(0.4 * lay.unit)).min() > 0.97


def test_smile_changes_the_mouth_and_lifts_its_corners(base, grid):
    y, x = grid
    lay = face_layout(base, SIZE)
    frown = render_faces(toggled(base, smile=-1.0, mask_on=0))
    smile = render_faces(toggled(base, smile=1.0, mask_on=0))
    mouth = (np.abs(y - per_image(lay.mouth_y)) < per_image(0.3 * lay.unit)) & (
        np.abs(x - per_image(lay.centre_x)) < per_image(0.45 * lay.unit)
    )
    assert share(change(frown, smile), mouth).min() > 0.97
    skin = np.array(SKIN_RGB, dtype=np.float64)[base[:, COL["skin_tone"]].astype(int)]

    def corners_minus_middle(images: np.ndarray) -> np.ndarray:
        """Mean row of lip pixels at the mouth corners minus that in the middle (negative: corners higher)."""
        px = images.astype(np.float64).transpose(0, 2, 3, 1)
        lips = np.linalg.norm(px - np.array(LIPS_RGB), axis=3) < np.linalg.norm(px - skin[:, None, None], axis=3)
        lips &= mouth
        side = np.abs(x - per_image(lay.centre_x)) / per_image(lay.unit)
        rows = [((lips & part) * y).sum(axis=(1, 2)) / (lips & part).sum(axis=(1, 2)) for part in (side > 0.2, side < 0.08)]
        return rows[0] - rows[1]

    assert (corners_minus_middle(smile) < -0.05 * lay.unit).all()
    assert (corners_minus_middle(frown) > 0.05 * lay.unit).all()


def test_long_hair_falls_below_the_ears(base, grid):
    y, x = grid
    lay = face_layout(base, SIZE)
    short, long = render_faces(toggled(base, hair_length=0)), render_faces(toggled(base, hair_length=1))
    assert share(change(short, long), y > per_image(lay.eye_y)).min() > 0.95
    hair_rgb = np.array(HAIR_RGB)[base[:, COL["hair_color"]].astype(int)][:, :, None, None]
    side = np.abs(x - per_image(lay.centre_x)) / per_image(lay.unit)
    beside_neck = (y > per_image(lay.ear_bottom_y)) & (side > 0.5)

    def hair_pixels(images: np.ndarray) -> np.ndarray:
        close = np.abs(images.astype(np.int32) - hair_rgb).max(axis=1) <= 12
        return (close & beside_neck).sum(axis=(1, 2))

    assert (hair_pixels(long) >= 40).all() and (hair_pixels(short) <= 2).all()


def test_eye_colour_tints_the_irises(base, grid):
    y, _ = grid
    lay = face_layout(base, SIZE)
    brown, blue = render_faces(toggled(base, eye_color=0)), render_faces(toggled(base, eye_color=1))
    mass = change(brown, blue)
    assert share(mass, np.abs(y - per_image(lay.eye_y)) < per_image(0.2 * lay.unit)).min() == 1.0
    changed = (mass > 0)[:, None]
    blueness = [((im[:, 2].astype(float) - im[:, 0]) * changed[:, 0]).sum(axis=(1, 2)) for im in (brown, blue)]
    assert (blueness[1] > blueness[0]).all()


def test_skin_tone_paints_the_cheeks_its_colour(base):
    lay = face_layout(base, SIZE)
    rows = np.floor(lay.centre_y + 0.1 * lay.unit).astype(int)
    cols = np.floor(lay.centre_x + 0.75 * lay.unit).astype(int)  # clear of glasses, mask and ears
    for k, rgb in enumerate(SKIN_RGB):
        cheeks = render_faces(toggled(base, skin_tone=k))[np.arange(N), :, rows, cols]
        np.testing.assert_allclose(cheeks, np.broadcast_to(rgb, cheeks.shape), atol=1, err_msg=str(rgb))
    assert np.all(np.diff(np.array(SKIN_RGB).mean(axis=1)) < 0)  # listed light -> dark


def test_background_and_head_jitter(base, grid):
    _, x = grid
    a, b = render_faces(toggled(base, background=0.0)), render_faces(toggled(base, background=1.0))
    assert (change(a, b)[:, 0, 0] > 60).all()
    centre = np.floor(face_layout(base, SIZE).centre_y).astype(int)
    np.testing.assert_array_equal(a[np.arange(N), :, centre, 32], b[np.arange(N), :, centre, 32])
    left, right = (render_faces(toggled(base, head_x=v, background=0.5)) for v in (-0.04, 0.04))

    def foreground_x(images: np.ndarray) -> np.ndarray:
        fg = (images != images[:, :, :1, :1]).any(axis=1)
        return (fg * x).sum(axis=(1, 2)) / fg.sum(axis=(1, 2))

    np.testing.assert_allclose(foreground_x(right) - foreground_x(left), 0.08 * SIZE, atol=0.6)
    small, large = (render_faces(toggled(base, head_size=v, background=0.5)) for v in (0.9, 1.1))
    assert ((large != large[:, :, :1, :1]).sum(axis=(1, 2, 3)) > (small != small[:, :, :1, :1]).sum(axis=(1, 2, 3))).all()


def test_loader_passes_through():
    faces = load("faces", split="test", n=4, size=32, channels=1, seed=2)
    assert faces.images.shape == (4, 1, 32, 32)
    np.testing.assert_array_equal(faces.factors, load_faces(split="test", n=4, size=32, channels=1, seed=2).factors)



def test_loader_draws_once_and_hands_out_copies(monkeypatch):
    first = load("faces", split="test", n=6, size=32, seed=5)
    first.images[:] = 0  # a caller scribbling on its copy
    first.factors[:] = -1
    import latentspace.data.faces as faces_module

    monkeypatch.setattr(faces_module, "render_faces", lambda *a, **k: pytest.fail("drawn twice"))
    again = load("faces", split="test", n=6, size=32, seed=5)
    np.testing.assert_array_equal(again.images, render_faces(again.factors, size=32))
    monkeypatch.undo()
    np.testing.assert_array_equal(again.factors, load_faces(split="test", n=6, size=32, seed=5).factors)


VALID = sample_face_factors(2, np.random.default_rng(0))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: load_faces(split="valid"), "split"),
        (lambda: load_faces(seed=-3), "seed"),
        (lambda: load_faces(n=-1), "n must"),
        (lambda: render_faces(np.zeros((2, 5))), "factors must be"),
        (lambda: render_faces(toggled(VALID, hair_color=5)), "hair_color"),
        (lambda: render_faces(toggled(VALID, mask_on=0.5)), "mask_on"),
        (lambda: render_faces(VALID, channels=4), "channels"),
        (lambda: render_faces(VALID, size=8), "size"),
        (lambda: render_faces(toggled(VALID, smile=2.5)), "smile"),
        (lambda: render_faces(toggled(VALID, head_size=np.nan)), "head_size"),
    ],
)
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_mild_extrapolation_is_drawn():
    wide = render_faces(toggled(VALID, smile=1.5, head_x=0.07))
    assert wide.shape == (2, 3, SIZE, SIZE)
