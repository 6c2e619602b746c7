"""The explorer's description panel (GET /api/vocabulary, POST /api/describe, POST /api/draw) on a tiny trained
faces run: its answers are the CLI's own (api.describe_codes, api.draw_codes), the drawn codes land on the map
where the map puts them, and bad input is a one-line 422."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from latent_runs import run_copy
from PIL import Image

from latentspace import api
from latentspace.utils.progress import NULL_PROGRESS

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette asks for httpx2 on import
    from fastapi.testclient import TestClient

from latentspace.explorer import create_app

pytestmark = pytest.mark.usefixtures("one_torch_thread", "small_conditional")



@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return run_copy("faces", tmp_path_factory)


@pytest.fixture(scope="module")
def client(faces):
    return TestClient(create_app(faces))


def detail(response, status: int = 422) -> str:
    assert response.status_code == status, response.text
    message = response.json()["detail"]
    assert "\n" not in message
    return message


def test_info_and_vocabulary_offer_the_runs_words(client, faces):
    assert client.get("/api/info").json()["has_vocabulary"] is True
    found = client.get("/api/vocabulary").json()
    vocab = api.run_vocabulary(api.open_run(faces))
    assert found["terms"] == vocab.known_terms()
    assert [a["name"] for a in found["attributes"]] == list(vocab.names)
    smile = next(a for a in found["attributes"] if a["name"] == "smile")
    assert smile["values"] == [] and smile["low"] < 0 < smile["high"]


def test_describe_answers_like_the_cli_for_test_images_and_uploads(client, faces):
    run, model = api.open_model(faces, "cpu")
    readers = api.fitted_readers(run, model)
    _, z = api.cached_codes(run, model, "test", NULL_PROGRESS)
    want = api.describe_codes(readers, z[7:8], ["test[7]"])[0].to_dict()
    got = client.post("/api/describe", json={"split": "test", "index": 7}).json()
    assert got["text"] == want["text"] and got["left_out"] == want["left_out"] and got["source"] == "test[7]"

    pixels = run.dataset("test").images[7]
    buf = io.BytesIO()
    Image.fromarray(pixels.transpose(1, 2, 0)).save(buf, format="PNG")
    ref = client.post("/api/upload", files={"file": ("face.png", buf.getvalue(), "image/png")}).json()["ref"]
    uploaded = client.post("/api/describe", json=ref).json()
    assert uploaded["source"] == f"upload[{ref['index']}]"
    assert uploaded["text"] == want["text"]  # the same pixels, the same code, the same words


def test_draw_gives_images_codes_and_map_positions(client, faces):
    answer = client.post("/api/draw", json={"description": "mask on, no glasses", "seed": 4})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["terms"] == ["mask on", "no glasses"] and body["method"] == "prior" and body["guidance"] == 1.0
    assert len(body["images"]) == 8
    run, model = api.open_model(faces, "cpu")
    want = api.draw_codes(run, model, "mask on, no glasses", n=8, seed=4)
    z = np.asarray([d["z"] for d in body["images"]], np.float32)
    np.testing.assert_allclose(z, want.z, atol=1e-5)  # the CLI's draw, the same seed
    pca = api.cached_map(run, api.split_codes(faces, "test")[1], "pca", 0)
    positions = np.asarray([d["positions"]["pca"] for d in body["images"]])
    np.testing.assert_allclose(positions, pca.to_map(z), atol=1e-4)
    first = body["images"][0]["image"]
    assert first.startswith("data:image/png;base64,")


def test_draw_with_the_directions_baseline_and_a_count(client):
    body = client.post("/api/draw", json={"description": "glasses", "n": 3, "method": "directions"}).json()
    assert body["method"] == "directions" and len(body["images"]) == 3


@pytest.mark.parametrize("payload, field, words", [
    ({"description": "blak hair"}, "description", "nearest known terms: black hair"),
    ({"description": "glasses, no glasses"}, "description", "both set glasses; give each attribute once"),
    ({"description": "smile=9"}, "description", "smile=9: expected a number in"),
    ({"description": "glasses", "n": 17}, "n", "less than or equal to 16"),
    ({"description": "glasses", "guidance": -1}, "guidance", "greater than or equal to 0"),
    ({"description": "glasses", "method": "gan"}, "method", "prior"),
    ({"description": "x" * 501}, "description", "at most 500"),
    ({"description": "glasses", "path": "/etc/passwd"}, "path", "not permitted"),
])
def test_bad_draw_requests_are_one_line_422s(client, payload, field, words):
    message = detail(client.post("/api/draw", json=payload))
    assert message.startswith(f"{field}: ") and words in message


def test_bad_describe_requests_are_one_line_422s(client):
    assert "outside 0..1999" in detail(client.post("/api/describe", json={"split": "test", "index": 5000}))
    assert "no upload 99" in detail(client.post("/api/describe", json={"split": "upload", "index": 99}))
