"""The explorer's JSON API and the api.points functions under it, on a tiny trained faces run: known answers from
the model itself (the PCA plane, the nearest codes, the CLI's image reading), and bad input that always gets a
one-line 4xx while the server keeps answering."""
from __future__ import annotations

import re

import asyncio
import base64
import io
import struct
import time
import warnings
import zlib

import numpy as np
import pytest
from latent_runs import run_copy
from PIL import Image
from sklearn.decomposition import PCA
from typer.testing import CliRunner

from latentspace import api
from latentspace.api.points import (
    ImageTooLarge,
    NotAnImage,
    cached_map,
    embed_map,
    linear_map,
    map_path,
    nearest_train,
    read_image_bytes,
)
from latentspace.latent.codes import decode_latents, encode_images
from latentspace.latent.manifold import shepard_map
from latentspace.metrics.realness import nearest_distance

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette asks for httpx2 on import
    from fastapi.testclient import TestClient

from latentspace.api.calibration import LocateOptions
from latentspace.api.locate import locate_images
from latentspace.explorer import create_app
from latentspace.explorer.batching import Batcher

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return run_copy("faces", tmp_path_factory)


@pytest.fixture(scope="module")
def client(faces):
    return TestClient(create_app(faces))


@pytest.fixture(scope="module")
def run_data(faces):
    run = api.open_run(faces)
    model = run.model()
    train, z_train = api.split_codes(faces, "train")
    test, z_test = api.split_codes(faces, "test")
    return run, model, train, z_train, test, z_test


def pixels_of(data_url: str) -> np.ndarray:
    """A PNG (or, for decoded points, BMP) data URL -> uint8 (C, H, W)."""
    assert data_url.startswith(("data:image/png;base64,", "data:image/bmp;base64,"))
    a = np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def png(pixels: np.ndarray, size: tuple[int, int] | None = None, fmt: str = "PNG") -> bytes:
    img = Image.fromarray(pixels.transpose(1, 2, 0) if pixels.shape[0] == 3 else pixels[0])
    if size is not None:
        img = img.resize(size, Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def huge_png(side: int = 30_000) -> bytes:
    """A valid side x side 1-bit PNG (all black): ~110 kB that would decode to ~900 million pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows, compress = b"\0" * ((1 + (side + 7) // 8) * 1000), zlib.compressobj(6)
    idat = b"".join(compress.compress(rows) for _ in range(side // 1000)) + compress.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def assert_one_line_error(response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and len(detail) < 300, detail
    for w in words:
        assert w in detail, detail


def still_answers(client) -> None:
    assert client.get("/api/info").status_code == 200


# -- the maths under the map ---------------------------------------------------------------------------------


def test_shepard_map_is_exact_at_the_points_and_a_weighted_mean_between():
    rng = np.random.default_rng(0)
    points, values = rng.normal(size=(40, 2)), rng.normal(size=(40, 3))
    np.testing.assert_allclose(shepard_map(points, values, points, k=8), values, rtol=0, atol=1e-6)
    between = shepard_map(points, values, rng.normal(size=(50, 2)), k=8)
    assert (between >= values.min(0) - 1e-6).all() and (between <= values.max(0) + 1e-6).all()
    np.testing.assert_allclose(shepard_map(points, np.ones((40, 1)), rng.normal(size=(5, 2))), 1.0, rtol=1e-6)
    # continuous: tiny moves give tiny changes, even where the set of nearest points changes
    path = np.stack([np.linspace(-2, 2, 4001), np.zeros(4001)], 1)
    steps = np.abs(np.diff(shepard_map(points, values, path, k=4), axis=0)).max()
    assert steps < 0.05
    # halfway between two points alone: their mean
    np.testing.assert_allclose(shepard_map(np.array([[0.0, 0], [2, 0]]), np.array([[0.0], [4]]), [[1.0, 0]]), [[2.0]])


def test_linear_map_is_the_pca_plane_through_the_mean():
    z = np.random.default_rng(1).normal(size=(300, 6)).astype(np.float32) * np.arange(1, 7, dtype=np.float32)
    m = linear_map(z)
    pca = PCA(n_components=2, svd_solver="full").fit(z)
    np.testing.assert_allclose(m.xy, pca.transform(z), rtol=0, atol=1e-4)
    np.testing.assert_allclose(m.to_latent([[1.5, -0.5]])[0], pca.mean_ + 1.5 * pca.components_[0]
                               - 0.5 * pca.components_[1], rtol=0, atol=1e-5)
    np.testing.assert_allclose(m.to_map(m.to_latent(m.xy[:5])), m.xy[:5], rtol=0, atol=1e-4)
    two = linear_map(z[:, :2])
    assert two.method == "latent"
    np.testing.assert_allclose(two.xy, z[:, :2])
    np.testing.assert_allclose(two.to_latent([[0.25, 3.0]]), [[0.25, 3.0]])


def test_tsne_map_goes_through_its_points_both_ways():
    z = np.random.default_rng(2).normal(size=(60, 5)).astype(np.float32)
    m = embed_map(z, "tsne", seed=0, max_points=40)
    assert m.xy.shape == (40, 2) and len(np.unique(m.index)) == 40
    np.testing.assert_allclose(m.to_latent(m.xy), z[m.index], rtol=0, atol=1e-5)
    np.testing.assert_allclose(m.to_map(z[m.index]), m.xy, rtol=0, atol=1e-4)


def test_nearest_train_matches_brute_force_nearest_first():
    rng = np.random.default_rng(3)
    z_train, queries = rng.normal(size=(500, 4)).astype(np.float32), rng.normal(size=(7, 4)).astype(np.float32)
    near = nearest_train(queries, z_train, k=8)
    d = np.sqrt(((queries[:, None].astype(np.float64) - z_train[None]) ** 2).sum(-1))
    np.testing.assert_array_equal(near.index, np.argsort(d, axis=1, kind="stable")[:, :8])
    np.testing.assert_allclose(near.distance, np.sort(d, axis=1)[:, :8], rtol=1e-6)
    assert nearest_train(z_train[10], z_train, k=1).index[0, 0] == 10  # a training code is its own nearest


def test_tsne_map_is_cached_beside_the_run(faces, run_data):
    run, *_, z_test = run_data
    z = z_test[:150]
    assert cached_map(run, z, "tsne", compute=False) is None
    first = cached_map(run, z, "tsne")
    assert map_path(faces, "tsne").is_file()
    again = cached_map(run, z, "tsne", compute=False)
    np.testing.assert_array_equal(again.xy, first.xy)
    np.testing.assert_array_equal(again.z, z[again.index])
    assert cached_map(run, z, "tsne", seed=1, compute=False) is None  # another seed is another map


def test_the_batcher_answers_each_request_with_its_own_result():
    batches = []

    def work(requests):
        batches.append(len(requests))
        time.sleep(0.01)  # while this batch runs, the others arrive and wait for the next
        return [float(z[0]) * 10 + k for z, k in requests]

    async def many():
        batcher = Batcher(work)
        first = asyncio.ensure_future(batcher(np.array([0.0]), 0))
        await asyncio.sleep(0.003)  # the first is being decoded alone: the rest queue up behind it
        rest = await asyncio.gather(*(batcher(np.array([float(i)]), i % 3) for i in range(1, 12)))
        return [await first, *rest]

    assert asyncio.run(many()) == [i * 10 + i % 3 for i in range(12)]
    assert batches == [1, 11]


def test_the_batcher_gives_every_request_of_a_failed_batch_the_error_and_goes_on():
    calls = []

    def work(requests):
        calls.append(len(requests))
        if len(calls) == 1:
            raise RuntimeError("model failed")
        return [1] * len(requests)

    async def run():
        batcher = Batcher(work)
        first = await asyncio.gather(batcher(np.zeros(1), 0), batcher(np.zeros(1), 0), return_exceptions=True)
        return first, await batcher(np.zeros(1), 0)

    first, after = asyncio.run(run())
    assert all(isinstance(e, RuntimeError) for e in first) and after == 1


# -- reading uploads ---------------------------------------------------------------------------------------


def test_uploads_are_read_like_image_files(run_data, tmp_path):
    run, *_, test, _ = run_data
    shape = run.model_config.image_shape
    for fmt, suffix in (("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp")):
        data = png(test.images[5], size=(48, 60), fmt=fmt)
        (tmp_path / f"x.{suffix}").write_bytes(data)
        np.testing.assert_array_equal(read_image_bytes(data, shape), api.read_image(tmp_path / f"x.{suffix}", shape))


def test_uploads_are_judged_by_their_bytes_and_bounded(run_data):
    shape = run_data[0].model_config.image_shape
    with pytest.raises(NotAnImage, match="not a PNG, JPEG or WebP"):
        read_image_bytes(b"just some text, named face.png", shape)
    with pytest.raises(NotAnImage, match="not a PNG, JPEG or WebP"):
        read_image_bytes(png(run_data[4].images[0], fmt="BMP"), shape)  # a real image, but not a format we take
    with pytest.raises(NotAnImage):
        read_image_bytes(png(run_data[4].images[0])[:60], shape)  # truncated
    with pytest.raises(ImageTooLarge, match="limit is 10 MB"):
        read_image_bytes(b"\0" * 10_000_001, shape)
    start = time.perf_counter()
    with pytest.raises(ImageTooLarge, match="megapixels"):
        read_image_bytes(huge_png(), shape)
    with pytest.raises(ImageTooLarge, match="5000x5000"):
        read_image_bytes(huge_png(5000), shape, max_pixels=1_000_000)  # under PIL's guard, over ours
    assert time.perf_counter() - start < 5  # refused from the header, never decoded


# -- the API: answers ------------------------------------------------------------------------------------------


def test_info_and_map_describe_the_run(client, run_data):
    *_, train, _, test, z_test = run_data
    info = client.get("/api/info").json()
    assert info["latent_dim"] == 8 and info["image_shape"] == [3, 32, 32]
    assert (info["n_train"], info["n_test"]) == (len(train), len(test))
    assert info["maps"] == ["pca"] and info["default_colouring"] == "hair_color"
    assert "smile" in [c["name"] for c in info["colourings"]]
    m = client.get("/api/maps/pca").json()
    np.testing.assert_allclose(np.stack([m["x"], m["y"]], 1), linear_map(z_test).xy, rtol=0, atol=1e-4)
    assert m["index"] == list(range(len(test)))
    colour = client.get("/api/colourings/hair_color").json()
    assert colour["kind"] == "discrete" and colour["names"][0] == "black"
    np.testing.assert_array_equal(colour["values"], test.factor("hair_color"))
    assert client.get("/api/colourings/smile").json()["kind"] == "continuous"


def test_a_map_point_decodes_the_pca_plane_through_the_mean(client, run_data):
    _, model, _, z_train, _, z_test = run_data
    pca = PCA(n_components=2, svd_solver="full").fit(z_test)
    for x, y in ((0.0, 0.0), (1.3, -0.7), (-4.0, 5.0)):  # the middle, between points, far out
        got = client.post("/api/maps/pca/decode", json={"x": x, "y": y}).json()
        want = pca.mean_ + x * pca.components_[0] + y * pca.components_[1]
        np.testing.assert_allclose(got["z"], want, rtol=0, atol=1e-4)
        np.testing.assert_array_equal(pixels_of(got["image"]), decode_latents(model, np.float32(got["z"])[None])[0])
        near = nearest_train(np.float32(got["z"]), z_train, 8)
        assert [n["index"] for n in got["neighbours"]] == near.index[0].tolist()
        assert all(n["url"] == f"/api/images/train/{n['index']}.png" for n in got["neighbours"])
    a = client.post("/api/maps/pca/decode", json={"x": 0.0, "y": 0.0}).json()["image"]
    b = client.post("/api/maps/pca/decode", json={"x": 1.3, "y": -0.7}).json()["image"]
    assert a != b


def test_decode_and_real_images(client, run_data):
    _, model, train, _, _, z_test = run_data
    got = client.post("/api/decode", json={"z": z_test[3].tolist(), "neighbours": 3}).json()
    np.testing.assert_array_equal(pixels_of(got["image"]), decode_latents(model, z_test[3:4])[0])
    assert len(got["neighbours"]) == 3
    r = client.get("/api/images/train/7.png")
    assert r.headers["content-type"] == "image/png"
    np.testing.assert_array_equal(pixels_of("data:image/png;base64," + base64.b64encode(r.content).decode()),
                                  train.images[7])
    located = client.post("/api/locate", json={"split": "test", "index": 3}).json()
    np.testing.assert_allclose(located["z"], z_test[3], rtol=0, atol=1e-6)
    np.testing.assert_allclose(located["positions"]["pca"], linear_map(z_test).xy[3], rtol=0, atol=1e-4)
    np.testing.assert_array_equal(pixels_of(located["reconstruction"]), decode_latents(model, z_test[3:4])[0])


def test_uploads_and_located_images_get_the_verdict_of_locate_once_the_run_is_calibrated(client, run_data):
    run, model, _, _, test, _ = run_data
    data = png(test.images[5])
    before = client.post("/api/upload", files={"file": ("five.png", data, "image/png")}).json()
    assert before["verdict"] is None and "latentspace locate" in before["verdict_note"]
    options = LocateOptions(k=4, seed=3)  # whatever options the cached calibration was made with
    api.calibration(run, model, options)
    noise = np.random.default_rng(0).integers(0, 256, test.images[5].shape, dtype=np.uint8)
    for name, pixels in (("five.png", test.images[5]), ("noise.png", noise)):
        got = client.post("/api/upload", files={"file": (name, png(pixels), "image/png")}).json()
        stored = client.get(got["url"]).content  # the upload as the explorer read it
        kept = pixels_of("data:image/png;base64," + base64.b64encode(stored).decode())
        expected = locate_images(run, model, kept[None], [name], options)[0]
        v = got["verdict"]
        assert v["on_manifold"] == expected.on_manifold and v["score"] == expected.score == api.DEFAULT_SCORE
        assert v["value"] == pytest.approx(expected.decisive.value, rel=1e-9)
        assert (v["threshold"], v["calibration_percentile"]) == (expected.decisive.threshold, 99.0)
    assert not v["on_manifold"] and v["verdict"] == "off the manifold"  # the noise
    located = client.post("/api/locate", json={"split": "test", "index": 5}).json()["verdict"]
    expected = locate_images(run, model, test.images[5:6], ["test:5"], options)[0]
    assert located["value"] == pytest.approx(expected.decisive.value, rel=1e-9)


def test_upload_round_trips_to_a_reconstruction_and_a_map_position(client, run_data, tmp_path):
    run, model, _, z_train, test, z_test = run_data
    data = png(test.images[11], size=(40, 56))  # not square: scaled and centre cropped like the CLI
    (tmp_path / "mine.png").write_bytes(data)
    expected = api.read_image(tmp_path / "mine.png", run.model_config.image_shape)
    got = client.post("/api/upload", files={"file": ("mine.png", data, "image/png")})
    assert got.status_code == 200, got.text
    got = got.json()
    assert got["ref"]["split"] == "upload"
    z = encode_images(model, expected[None])
    np.testing.assert_allclose(got["z"], z[0], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(pixels_of(got["reconstruction"]), decode_latents(model, z)[0])
    np.testing.assert_allclose(got["positions"]["pca"], linear_map(z_test).to_map(z)[0], rtol=0, atol=1e-4)
    assert [n["index"] for n in got["neighbours"]] == nearest_train(z, z_train, 8).index[0].tolist()
    stored = client.get(got["url"])
    np.testing.assert_array_equal(pixels_of("data:image/png;base64," + base64.b64encode(stored.content).decode()),
                                  expected)
    # the upload is an image like any other: interpolate from it
    path = client.post("/api/interpolate", json={"a": got["ref"], "b": {"split": "test", "index": 0}, "steps": 3})
    np.testing.assert_array_equal(pixels_of(path.json()["paths"]["pixel"]["frames"][0]), expected)


def test_interpolation_frames_and_scores(client, run_data):
    _, model, train, _, test, _ = run_data
    got = client.post("/api/interpolate", json={"a": {"split": "test", "index": 1},
                                                "b": {"split": "test", "index": 2}, "steps": 5}).json()
    assert got["t"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    pixel, lerp = got["paths"]["pixel"], got["paths"]["lerp"]
    np.testing.assert_array_equal(pixels_of(pixel["frames"][0]), test.images[1])
    np.testing.assert_array_equal(pixels_of(pixel["frames"][-1]), test.images[2])
    ends = decode_latents(model, encode_images(model, test.images[[1, 2]]))
    np.testing.assert_array_equal(pixels_of(lerp["frames"][0]), ends[0])
    np.testing.assert_array_equal(pixels_of(got["paths"]["slerp"]["frames"][-1]), ends[1])
    assert pixel["frames"][1] != pixel["frames"][3] and lerp["frames"][1] != lerp["frames"][3]
    for path in got["paths"].values():
        assert len(path["elbo"]) == 5 and all(np.isfinite(path["elbo"]))
        assert all(d >= 0 for d in path["nearest_distance"])
        assert path["classifier_confidence"] is None  # no evaluator cached: never trained here
    assert set(got["scores"]) == {"elbo", "nearest_distance"}
    np.testing.assert_allclose(pixel["nearest_distance"][0], nearest_distance(test.images[1:2], train.images)[0])


def test_attribute_and_axis_sliders_move_the_pinned_code(client, faces, run_data):
    _, model, *_, z_test = run_data
    assert not (faces / api.DIRECTIONS_FILE).exists()
    found = client.get("/api/attributes").json()
    assert (faces / api.DIRECTIONS_FILE).is_file()  # fitted on first use, and saved
    names = [a["name"] for a in found["attributes"]]
    assert "mask_on" in names and found["latent_dim"] == 8
    z = z_test[4].tolist()
    still = client.post("/api/edit", json={"z": z}).json()
    np.testing.assert_array_equal(pixels_of(still["image"]), decode_latents(model, z_test[4:5])[0])
    mask = next(a for a in found["attributes"] if a["name"] == "mask_on")
    moved = client.post("/api/edit", json={"z": z, "attributes": {"mask_on": 2.0}}).json()
    direction = {d.name: d for d in api.run_directions(api.open_run(faces), model)}["mask_on"]
    np.testing.assert_allclose(moved["z"], z_test[4] + 2.0 * mask["scale"] * direction.vector, rtol=0, atol=1e-5)
    assert moved["image"] != still["image"]
    axes = [0.0] * 8
    axes[3] = 1.5
    shifted = client.post("/api/edit", json={"z": z, "axes": axes}).json()
    np.testing.assert_allclose(np.subtract(shifted["z"], z), np.eye(8)[3] * 1.5, rtol=0, atol=1e-6)


# -- the API: bad input ----------------------------------------------------------------------------------------


def test_a_nan_latent_is_refused(client):
    r = client.post("/api/decode", content=b'{"z": [0, 0, NaN, 0, 0, 0, 0, 0]}',
                    headers={"content-type": "application/json"})
    assert_one_line_error(r, 422, "z[2]", "finite")
    r = client.post("/api/decode", content=b'{"z": [0, 0, 0, Infinity, 0, 0, 0, 0]}',
                    headers={"content-type": "application/json"})
    assert_one_line_error(r, 422, "z[3]", "finite")
    still_answers(client)


def test_a_latent_of_the_wrong_length_is_refused(client):
    assert_one_line_error(client.post("/api/decode", json={"z": [0.0] * 7}), 422,
                          "z: latent has 7 values, the model expects 8")
    assert_one_line_error(client.post("/api/edit", json={"z": [0.0] * 9}), 422, "latent has 9 values")
    assert_one_line_error(client.post("/api/edit", json={"z": [0.0] * 8, "axes": [1.0] * 3}), 422, "axes")
    assert_one_line_error(client.post("/api/decode", json={"z": []}), 422, "z")
    still_answers(client)


def test_a_20_mb_upload_is_refused(client):
    r = client.post("/api/upload", files={"file": ("big.png", b"\0" * 20_000_000, "image/png")})
    assert_one_line_error(r, 413, "request is 20 MB", "at most 10 MB")
    still_answers(client)


def test_a_text_file_sent_as_an_image_is_refused(client):
    r = client.post("/api/upload", files={"file": ("face.png", b"this is not a face\n" * 20, "image/png")})
    assert_one_line_error(r, 415, "file:", "not a PNG, JPEG or WebP")
    still_answers(client)


def test_a_30000_pixel_square_png_is_refused(client):
    r = client.post("/api/upload", files={"file": ("huge.png", huge_png(), "image/png")})
    assert_one_line_error(r, 413, "file:", "megapixels")
    still_answers(client)


def test_an_out_of_range_index_is_refused(client, run_data):
    n_test, n_train = len(run_data[4]), len(run_data[2])
    assert_one_line_error(client.get(f"/api/images/test/{n_test}.png"), 422, f"index: test index {n_test} is outside")
    assert_one_line_error(client.get(f"/api/images/train/{n_train + 5}.png"), 422, "train index")
    assert_one_line_error(client.post("/api/locate", json={"split": "test", "index": 10**6}), 422, "index")
    assert_one_line_error(client.post("/api/locate", json={"split": "test", "index": -1}), 422, "index")
    assert_one_line_error(client.post("/api/interpolate", json={"a": {"split": "test", "index": 0},
                                                                "b": {"split": "upload", "index": 999}}),
                          422, "b.index", "no upload 999")
    assert_one_line_error(client.get("/api/images/secret/0.png"), 422, "split")
    still_answers(client)


def test_other_bad_input_is_a_named_4xx(client):
    assert_one_line_error(client.post("/api/maps/pca/decode", json={"x": 1e9, "y": 0}), 422, "x")
    assert_one_line_error(client.post("/api/maps/tsne/decode", json={"x": 0, "y": 0}), 404, "no tsne map")
    assert_one_line_error(client.post("/api/edit", json={"z": [0.0] * 8, "attributes": {"wings": 1}}), 422,
                          "attributes.wings")
    assert_one_line_error(client.post("/api/edit", json={"z": [0.0] * 8, "attributes": {"mask_on": 99}}), 422,
                          "attributes.mask_on")
    assert_one_line_error(client.post("/api/interpolate", json={"a": {"split": "test", "index": 0},
                                                                "b": {"split": "test", "index": 1}, "steps": 1000}),
                          422, "steps")
    assert_one_line_error(client.post("/api/decode", content=b"{not json", headers={"content-type": "application/json"}),
                          422)
    assert_one_line_error(client.post("/api/decode", json={"z": [0.0] * 8, "path": "/etc/passwd"}), 422, "path")
    assert_one_line_error(client.post("/api/upload"), 422, "file")
    assert_one_line_error(client.post("/api/decode", content=b"[" + b"0," * 200_000 + b"0]",
                                      headers={"content-type": "application/json"}), 413, "limit is 256 kB")
    streamed = client.post("/api/decode", content=iter([b"[" + b"0," * 100_000] * 3),
                           headers={"content-type": "application/json"})
    assert_one_line_error(streamed, 413)
    assert_one_line_error(client.get("/api/colourings/nope"), 404, "no label or factor")
    still_answers(client)


def test_the_page_is_served_from_the_package_with_no_outside_sources(client):
    page = client.get("/")
    assert page.status_code == 200 and "latentspace explorer" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("main.js", "map.js", "api.js", "style.css"):
        text = client.get(f"/{name}").text
        assert "http://" not in text and "https://" not in text, name
    assert "http" not in page.text.replace('href="/docs"', "")
    assert client.get("/openapi.json").json()["paths"]["/api/maps/{method}/decode"]["post"]


def test_the_api_docs_page_works_offline(client):
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text.lower()
    sources = re.findall(r"""(?:src|href)=["']([^"']+)""", docs.text) + re.findall(r"url: ?'([^']+)'", docs.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    for s in sources:
        assert client.get(s).status_code == 200, s


# -- the command ----------------------------------------------------------------------------------------------


def test_explore_command_serves_until_stopped_and_warns_off_loopback(faces, monkeypatch):
    import uvicorn

    from latentspace.cli.main import app

    served = {}

    def run(self, sockets=None):
        served["port"] = sockets[0].getsockname()[1]
        served["app"] = self.config.app

    monkeypatch.setattr(uvicorn.Server, "run", run)
    runner = CliRunner()
    result = runner.invoke(app, ["explore", str(faces), "--port", "0"])
    assert result.exit_code == 0, result.output
    assert f"http://127.0.0.1:{served['port']}/" in result.output and "explorer stopped" in result.output
    assert "warning" not in result.output
    result = runner.invoke(app, ["explore", str(faces), "--port", "0", "--host", "0.0.0.0"])
    assert result.exit_code == 0 and "no authentication" in result.output
    help_text = runner.invoke(app, ["explore", "--help"]).output
    assert "--port" in help_text and "--open" in help_text and "browser" in help_text
    result = runner.invoke(app, ["explore", str(faces), "--map", "nope"])
    assert result.exit_code != 0 and "--map" in result.output
