"""The report: built from tiny real runs (faces with every factor, and a folder without labels), its sections
in the story's order with a number in every caption, rendered into one self-contained page that a real
Chromium loads without errors, requests or horizontal scrolling at 375 px."""
from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from conftest import assert_page_loads_cleanly
import torch
from latent_runs import run_copy
from PIL import Image
from quick import quick_evaluator
from typer.testing import CliRunner

from latentspace import api
from latentspace.api.evaluate import EvaluateOptions
from latentspace.cli.main import app
from latentspace.data import load
from latentspace.models import ModelConfig, build
from latentspace.report import build_context, render_html, write_report
from latentspace.train import TrainConfig, fit

pytestmark = pytest.mark.usefixtures("one_torch_thread", "small_conditional")

QUICK = EvaluateOptions(iw_k=4, iw_n=50, samples=200, diffusion_steps=200, ood_k=4, ood_n=100)
KEYS = ("space", "data", "words", "manifold", "axes", "generation", "interpolation", "edits", "evaluation", "run")
MAX_BYTES = 5_000_000


@pytest.fixture(scope="module")
def faces_report(tmp_path_factory):
    run = run_copy("faces", tmp_path_factory)
    with pytest.MonkeyPatch.context() as mp, quick_evaluator(mp):
        context = build_context(run, QUICK)
    path = write_report(context, run / "report.html")
    return context, path


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """A folder of 120 unlabelled PNGs (no labels, no factors)."""
    folder = tmp_path_factory.mktemp("pictures")
    faces = load("faces", split="train", size=32, n=120)
    for i, image in enumerate(faces.images):
        Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"img{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory, pictures):
    """A 1-epoch run on the unlabelled folder."""
    folder = pictures
    info = {"name": str(folder), "size": 32, "channels": 3, "data_dir": None, "seed": 0, "n": None}
    train, test = (load(str(folder), split=s, size=32, channels=3) for s in ("train", "test"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build(ModelConfig(image_shape=train.shape, latent_dim=4, width=8, hidden=32))
    run = tmp_path_factory.mktemp("folder-run") / "run"
    fit(model, train, test, TrainConfig(epochs=1, batch_size=20, warmup_steps=1, probe_size=10), run, "cpu",
        data_info=info)
    return run


def test_sections_follow_the_story_with_numbers_in_every_caption(faces_report):
    context, _ = faces_report
    assert tuple(s.key for s in context.sections) == KEYS
    for section in context.sections:
        assert section.figures or section.notes, section.key
        for f in section.figures:
            assert re.search(r"\d", f.caption), (section.key, f.caption)
            img = Image.open(io.BytesIO(f.data))
            assert img.size == (f.width, f.height) and img.format == f.mime.split("/")[1].upper()


def test_small_images_are_enlarged_to_at_least_96_px(faces_report):
    context, _ = faces_report
    data = next(s for s in context.sections if s.key == "data")
    grid = data.figures[0]
    assert grid.width >= 8 * 96  # 8 columns of 32 px faces, each shown at 96 px or more


def test_pixel_space_counts_are_exact(faces_report):
    context, _ = faces_report
    rows = {r[0].split(" (")[0]: r for r in context.sections[0].tables[0].rows}
    assert rows["1x2 binary"][3] == "2^2 = 4" and rows["2x2 binary"][3] == "2^4 = 16"
    assert rows["MNIST digit"][1:3] == ("784", "200,704") and rows["MNIST digit"][4] == "1,889"
    assert rows["this run's images"][4] == "7,399"  # 256^3072 has 7,399 digits


def test_one_test_image_is_described_in_pixels_and_in_words_and_drawn_back(faces_report):
    context, _ = faces_report
    words = next(s for s in context.sections if s.key == "words")
    assert words.title == "3. Pixels or words"
    run = Path(context.run)
    first = api.open_run(run).dataset("test").images[0]
    triples = ", ".join(f"({r}, {g}, {b})" for r, g, b in first.reshape(3, -1).T[:6])
    described, drawn = words.figures
    found = api.describe(run, [0])[0]
    assert f"In pixels: an image 32 wide and 32 high; its pixel data is {triples}, …" in described.caption
    assert f"In words: {found.words()}." in described.caption
    table = {row[0]: row for row in words.tables[0].rows}
    test = api.open_run(run).dataset("test")
    hair = test.factor_values["hair_color"][int(test.factor("hair_color")[0])]
    assert table["hair_color"][2] == f"{hair} hair"  # the truth column, beside what the code says
    assert all(table[r.attribute][1] == r.words() for r in found.readings)
    assert all(table[name][1] == "left out" and table[name][6] == "no" for name in found.left_out)
    assert drawn.title == "16 images drawn from those words" and drawn.width >= 8 * 96 and drawn.height >= 2 * 96
    vocab = api.run_vocabulary(api.open_run(run))
    words_only = [r.text for r in found.readings if vocab.attributes[vocab.names.index(r.attribute)].discrete]
    assert f'from "{", ".join(words_only)}"' in drawn.caption


def test_the_map_shown_is_the_best_separating_candidate(faces_report):
    context, _ = faces_report
    manifold = next(s for s in context.sections if s.key == "manifold")
    candidates = manifold.tables[0].rows
    gains = [float(r[4]) for r in candidates]
    assert gains == sorted(gains, reverse=True)
    method, colour = candidates[0][:2]
    assert any(f"coloured by {colour}" in f.caption and method in f.caption for f in manifold.figures)


def test_page_is_self_contained_escaped_and_small(faces_report):
    _, path = faces_report
    html = path.read_text()
    assert path.stat().st_size <= MAX_BYTES
    assert not re.search(r"""(src|href)=["'](https?:|//)""", html)
    assert html.count("<img ") == sum(len(s.figures) for s in faces_report[0].sections)
    assert "<script" not in html


def test_text_is_escaped(faces_report):
    context, _ = faces_report
    from dataclasses import replace

    evil = replace(context, subtitle="<script>alert(1)</script>")
    assert "<script>alert(1)</script>" not in render_html(evil)
    assert "&lt;script&gt;" in render_html(evil)


def test_a_folder_without_labels_says_so_instead_of_failing(folder_run):
    context = build_context(folder_run, QUICK)
    assert tuple(s.key for s in context.sections) == KEYS
    notes = " ".join(n for s in context.sections for n in s.notes)
    assert "no labels" in notes and "factors" in notes
    by_key = {s.key: s for s in context.sections}
    assert by_key["generation"].figures and by_key["axes"].figures and not by_key["edits"].figures
    assert "<img" in render_html(context)


def test_report_without_options_reuses_the_stored_evaluation(faces_report, monkeypatch):
    context, _ = faces_report
    from latentspace.api import measures

    monkeypatch.setattr(measures, "reconstruction", lambda *a, **k: pytest.fail("measured again"))
    with quick_evaluator(monkeypatch):
        result = CliRunner().invoke(app, ["report", context.run, "--out", str(Path(context.run) / "again.html"),
                                          "--device", "cpu"])
    assert result.exit_code == 0, result.output


def test_cli_report_prints_a_file_url(faces_report, tmp_path, monkeypatch):
    context, path = faces_report
    run = Path(context.run)
    out = tmp_path / "r.html"
    with quick_evaluator(monkeypatch):
        result = CliRunner().invoke(app, ["report", str(run), "--out", str(out), "--k", "4", "--iw-images", "50",
                                          "--samples", "200", "--diffusion-steps", "200", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert out.read_text().count("<section") == len(KEYS)
    assert out.resolve().as_uri() in result.output.replace("\n", "")


def test_demo_on_a_folder_ends_in_a_report(pictures, tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--data", str(pictures), "--epochs", "1", "--latent-dim", "4",
                                      "--diffusion-steps", "100",
                                      "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = out / "report.html"
    assert report.is_file() and report.resolve().as_uri() in result.output.replace("\n", "")
    assert (out / f"{pictures.name}-vae" / "evaluation.json").is_file()
    assert "no labels or factors" in result.output


@pytest.mark.browser
def test_report_loads_cleanly_in_chromium(faces_report, browser):
    assert_page_loads_cleanly(browser, faces_report[1])
