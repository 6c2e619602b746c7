"""The explorer page in Debian's Chromium (Playwright), served by uvicorn on loopback from a tiny faces run: it loads
cleanly, decodes under the pointer, plays an interpolation, moves the pinned image with a slider and takes an
upload. Every request the page makes must stay on 127.0.0.1."""
from __future__ import annotations

import io
import threading
import time

import httpx
import numpy as np
import pytest
import uvicorn
from latent_runs import run_copy
from PIL import Image

from latentspace import api
from latentspace.api.calibration import LocateOptions
from latentspace.explorer import create_app
from latentspace.explorer.app import listen

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("one_torch_thread", "small_conditional")]
MARGIN = 0.05  # map.js pads the map's extent by this fraction on each side


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return run_copy("faces", tmp_path_factory)


@pytest.fixture(scope="module")
def url(faces):
    """The explorer served by uvicorn in a background thread on a free loopback port."""
    sock = listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(faces), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the explorer did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def page(browser, url):
    """A fresh page on the explorer, loaded; afterwards, no console errors and no request off loopback."""
    context = browser.new_context(viewport={"width": 1200, "height": 1000})
    p = context.new_page()
    errors, requests = [], []
    p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.on("request", lambda r: requests.append(r.url))
    p.goto(url)
    p.wait_for_selector("body[data-ready=true]", timeout=20_000)
    yield p
    status = p.locator("#status").text_content()
    context.close()
    assert errors == []
    outside = [r for r in requests if not r.startswith(f"{url}/") and not r.startswith("data:")]
    assert outside == []
    assert status == ""  # the page reported no failed request


def canvas_point(page, url: str, k: int) -> tuple[float, float]:
    """Page coordinates of point k of the PCA map (as map.js places it)."""
    m = httpx.get(f"{url}/api/maps/pca").json()
    x, y = np.asarray(m["x"]), np.asarray(m["y"])
    box = page.locator("#map").bounding_box()
    (x0, x1), (y0, y1) = ((v.min() - MARGIN * np.ptp(v), v.max() + MARGIN * np.ptp(v)) for v in (x, y))
    return box["x"] + (x[k] - x0) / (x1 - x0) * box["width"], box["y"] + (y1 - y[k]) / (y1 - y0) * box["height"]


def changed(page, selector: str, before: str | None, attribute: str = "src") -> str:
    page.wait_for_function(
        "([s, a, b]) => document.querySelector(s).getAttribute(a) && document.querySelector(s).getAttribute(a) !== b",
        arg=[selector, attribute, before], timeout=10_000)
    return page.get_attribute(selector, attribute)


def pin_point(page, url: str, k: int) -> None:
    caption = page.locator("#pinned-caption").text_content()
    page.mouse.click(*canvas_point(page, url, k))
    page.wait_for_function("([c]) => document.getElementById('pinned-caption').textContent !== c", arg=[caption],
                           timeout=10_000)


def test_the_page_loads_and_draws_the_map(page, url):
    info = httpx.get(f"{url}/api/info").json()
    assert info["run"] in page.locator("#run-info").text_content()
    assert page.locator("#map-method").input_value() == "pca"
    assert page.locator("#colour-by").input_value() == "hair_color"
    assert page.locator("#legend span").count() == 5  # black, brown, blond, red, grey
    drawn = page.evaluate("""() => { const c = document.getElementById('map');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }""")
    assert drawn > 2000  # 2,000 test points, a few device pixels each
    assert page.locator("#attribute-sliders input").count() > 0 and page.locator("#axis-sliders input").count() == 8


def test_moving_the_pointer_decodes_what_is_under_it(page):
    box = page.locator("#map").bounding_box()
    seen = [None]
    for fx, fy in ((0.2, 0.3), (0.5, 0.5), (0.8, 0.75)):  # empty corners too
        page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"], steps=4)
        seen.append(changed(page, "#decoded", seen[-1]))
    assert len(set(seen[1:])) == 3 and all(s.startswith("data:image/bmp;base64,") for s in seen[1:])
    assert page.locator("#neighbours img").count() == 8
    where = page.locator("#decoded-where").text_content()
    assert where.startswith("pca (")


def test_the_interpolation_slider_changes_both_panels(page, url):
    for k, button in ((3, "#use-a"), (40, "#use-b")):
        pin_point(page, url, k)
        assert "test" in page.locator("#pinned-caption").text_content()
        page.click(button)
    page.wait_for_function("() => !document.getElementById('t-slider').disabled", timeout=20_000)
    pixel, latent = page.get_attribute("#frame-pixel", "src"), page.get_attribute("#frame-latent", "src")
    assert page.locator("#score-latent").text_content().startswith("ELBO")
    page.locator("#t-slider").fill("6")
    assert changed(page, "#frame-pixel", pixel) != pixel
    assert changed(page, "#frame-latent", latent) != latent
    assert "ELBO" in page.locator("#score-note").text_content()


def test_an_attribute_slider_changes_the_pinned_image(page, url):
    pin_point(page, url, 7)
    before = page.get_attribute("#pinned", "src")
    page.locator("#attribute-sliders input[data-name='mask_on']").fill("2.5")
    after = changed(page, "#pinned", before)
    assert after.startswith("data:image/png;base64,") and after != before


def test_an_upload_round_trips_to_a_reconstruction_and_a_map_position(page, url, faces, tmp_path):
    test = api.open_run(faces).dataset("test")
    path = tmp_path / "my face.png"
    Image.fromarray(test.images[9].transpose(1, 2, 0)).resize((50, 70)).save(path)
    page.set_input_files("#file", str(path))
    reconstruction = changed(page, "#upload-reconstruction", None)
    direct = httpx.post(f"{url}/api/upload", files={"file": ("x.png", path.read_bytes(), "image/png")}).json()
    assert reconstruction == direct["reconstruction"]
    where = page.locator("#upload-where").text_content()
    x, y = (float(v) for v in where.split("(")[1].split(")")[0].split(","))
    np.testing.assert_allclose([x, y], direct["positions"]["pca"], atol=1e-3)
    m = httpx.get(f"{url}/api/maps/pca").json()
    assert min(m["x"]) - 5 < x < max(m["x"]) + 5 and min(m["y"]) - 5 < y < max(m["y"]) + 5
    assert "upload" in page.locator("#pinned-caption").text_content()
    assert page.locator("#upload-neighbours img").count() == 8
    original = Image.open(io.BytesIO(httpx.get(url + page.get_attribute("#upload-original", "src")).content))
    assert original.size == (32, 32)
    assert "not calibrated" in page.locator("#upload-verdict").text_content()


def test_an_upload_shows_the_verdict_of_locate(page, url, faces, tmp_path):
    run = api.open_run(faces)
    api.calibration(run, run.model(), LocateOptions(k=2))  # picked up by the running explorer
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    path = tmp_path / "noise.png"
    Image.fromarray(noise).save(path)
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#upload-verdict.off", timeout=20_000)  # the page's CSP rules out wait_for_function
    verdict = page.locator("#upload-verdict")
    assert verdict.text_content().startswith("off the manifold: combined score")
    assert verdict.evaluate("e => getComputedStyle(e).color") == "rgb(180, 35, 24)"


def test_a_pinned_image_is_described_in_the_runs_words(page, url):
    pin_point(page, url, 11)
    page.wait_for_selector("#pinned-description:not(:empty)", timeout=20_000)
    page.wait_for_function("() => !document.getElementById('pinned-description').textContent.endsWith('…')",
                           timeout=20_000)
    k = httpx.get(f"{url}/api/maps/pca").json()["index"][11]
    want = httpx.post(f"{url}/api/describe", json={"split": "test", "index": k}).json()
    shown = page.locator("#pinned-description").text_content()
    assert shown.startswith(want["text"]) and all(name in shown for name in want["left_out"])


def test_the_description_box_draws_eight_images_onto_the_map(page):
    def orange_pixels() -> int:
        return page.evaluate("""() => { const c = document.getElementById('map');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
            for (let i = 0; i < d.length; i += 4) n += d[i] === 224 && d[i + 1] === 123 && d[i + 2] === 0;
            return n; }""")

    before = orange_pixels()
    page.fill("#draw-description", "mask on, no glasses")
    page.click("#draw-button")
    page.wait_for_selector("#drawn img >> nth=7", timeout=120_000)  # the first draw fits the prior
    assert page.locator("#drawn img").count() == 8
    assert page.locator("#draw-caption").text_content().startswith("8 images of mask on, no glasses (prior")
    assert page.get_attribute("#drawn img >> nth=0", "src").startswith("data:image/png;base64,")
    assert orange_pixels() > before + 8 * 10  # eight squares, in the drawn colour
    page.fill("#draw-description", "glasses")
    page.click("#draw-button")
    page.wait_for_selector("#draw-caption:has-text('images of glasses')", timeout=20_000)


def test_the_page_fits_a_phone(browser, url):
    context = browser.new_context(viewport={"width": 375, "height": 800})
    p = context.new_page()
    p.goto(url)
    p.wait_for_selector("body[data-ready=true]", timeout=20_000)
    assert p.evaluate("() => document.documentElement.scrollWidth") <= 375
    box = p.locator("#map").bounding_box()
    assert 250 < box["width"] <= 375
    context.close()


def test_the_api_docs_render_offline(browser, url):
    context = browser.new_context()
    p = context.new_page()
    requests = []
    p.on("request", lambda r: requests.append(r.url))
    p.goto(f"{url}/docs")
    p.wait_for_selector(".opblock", timeout=20_000)  # Swagger UI drew the operations from /openapi.json
    assert p.locator(".opblock").count() >= 8
    context.close()
    assert [r for r in requests if not r.startswith(f"{url}/") and not r.startswith("data:")] == []
