"""`latentspace describe` and `latentspace draw` end to end on tiny real runs (faces with every factor known,
MNIST with its labels): what they print and write, and that the words and the images agree with the truth."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from latent_runs import run_copy
from PIL import Image
from typer.testing import CliRunner

from latentspace import api
from latentspace.cli.main import app
from latentspace.data.faces import FACTOR_NAMES
from latentspace.utils.progress import NULL_PROGRESS

pytestmark = pytest.mark.usefixtures("one_torch_thread", "quick_evaluator", "small_conditional")
runner = CliRunner()



@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return run_copy("faces", tmp_path_factory)


@pytest.fixture(scope="module")
def mnist4(tmp_path_factory, mnist_dir):
    return run_copy("mnist4", tmp_path_factory, mnist_dir.parent)


def ok(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def fails(*args) -> str:
    """The one line a failing command shows: typer's usage errors print it, ValueErrors become it in main()."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code != 0
    return result.output if result.exit_code == 2 else str(result.exception)


def test_describe_prints_a_line_per_image_in_the_runs_words(faces):
    output = ok("describe", faces, 0, 1, 2, "--device", "cpu").output
    lines = [line for line in output.splitlines() if line.startswith("test[")]  # after the progress bars
    assert [line.split(":")[0] for line in lines] == ["test[0]", "test[1]", "test[2]"]
    run, model = api.open_model(faces, "cpu")
    readers = api.fitted_readers(run, model)
    _, z = api.cached_codes(run, model, "test", NULL_PROGRESS)
    mask = {r.attribute.name: r for r in readers}["mask_on"].predict(z[:3])[0]
    for line, masked in zip(lines, mask):
        assert ("mask on (" in line) == bool(masked) and ("no mask (" in line) != bool(masked)
    left_out = [r.attribute.name for r in readers if not r.told]
    if left_out:
        assert all(line.endswith(f"not read above chance: {', '.join(left_out)}") for line in lines)


def test_describe_json_is_the_same_reading_as_data(faces):
    data = json.loads(ok("describe", faces, 5, "--json", "--device", "cpu").output)
    line = ok("describe", faces, 5, "--device", "cpu").output.strip()
    assert data[0]["source"] == "test[5]" and line.startswith(f"test[5]: {data[0]['text']}")
    for r in data[0]["readings"]:
        assert (r["probability"] is None) == (r["low"] is not None)
        if r["low"] is not None:
            assert r["low"] < r["value"] < r["high"]
        else:
            assert 0 < r["probability"] <= 1


def test_describe_reads_the_big_attributes_about_as_well_as_the_truth(faces):
    run, model = api.open_model(faces, "cpu")
    test, z = api.cached_codes(run, model, "test", NULL_PROGRESS)
    found = api.describe_codes(api.fitted_readers(run, model), z[:300], [str(i) for i in range(300)])
    truth = test.factors[:300, FACTOR_NAMES.index("mask_on")]
    mask = [next(r.value for r in d.readings if r.attribute == "mask_on") for d in found]
    majority = max(truth.mean(), 1 - truth.mean())
    assert np.mean(np.asarray(mask) == truth) > majority + 0.1  # a one-epoch width-8 run: well above guessing


def test_describe_terms_lists_the_vocabulary_and_images_are_required(faces):
    terms = ok("describe", faces, "--terms").output.splitlines()
    assert {"black hair", "mask on", "no mask", "glasses", "no glasses", "long hair"} <= set(terms)
    assert any(re.fullmatch(r"smile=<number in -0\.9\d*\.\.0\.9\d*>", t) for t in terms)
    assert "give at least one test-split index or image file" in fails("describe", faces)


def test_draw_writes_images_that_have_the_terms_asked_for(faces, tmp_path):
    out = ok("draw", faces, "mask on, no glasses", "-n", 24, "--out", tmp_path / "d.npz", "--device", "cpu").output
    assert "24 images of mask on, no glasses (prior, guidance 1" in out
    with np.load(tmp_path / "d.npz") as f:
        images, z, conditions = f["images"], f["z"], f["conditions"]
    names = api.run_vocabulary(api.open_run(faces)).names
    assert images.shape == (24, 3, 32, 32) and z.shape == (24, 8) and conditions.shape == (24, len(names))
    assert (conditions[:, names.index("mask_on")] == 1).all() and (conditions[:, names.index("glasses")] == 0).all()
    readers = {r.attribute.name: r for r in api.fitted_readers(*api.open_model(faces, "cpu"))}
    masked = readers["mask_on"].predict(z)[0].mean()
    ok("draw", faces, "no mask", "-n", 24, "--out", tmp_path / "n.npz", "--device", "cpu")
    with np.load(tmp_path / "n.npz") as f:
        unmasked = readers["mask_on"].predict(f["z"])[0].mean()
    assert masked > 0.7 and masked - unmasked > 0.4  # the reader itself is right on ~3 in 4 test codes


def test_draw_guidance_zero_ignores_the_description(faces, tmp_path):
    run, model = api.open_model(faces, "cpu")
    free = api.draw_codes(run, model, "mask on", n=64, guidance=0.0, seed=3)
    reader = {r.attribute.name: r for r in api.fitted_readers(run, model)}["mask_on"]
    share = reader.predict(free.z)[0].mean()
    truth = run.dataset("train").factors[:, FACTOR_NAMES.index("mask_on")].mean()
    assert abs(share - truth) < 0.2


def test_draw_writes_a_grid_and_the_directions_baseline(faces, tmp_path):
    ok("draw", faces, "glasses", "-n", 4, "--out", tmp_path / "g.png", "--method", "directions", "--device", "cpu")
    with Image.open(tmp_path / "g.png") as img:
        assert min(img.size) >= 64  # a 2 x 2 grid of 32 px faces
    run, model = api.open_model(faces, "cpu")
    moved = api.draw_codes(run, model, "mask on", n=32, method="directions", seed=1)
    reader = {r.attribute.name: r for r in api.fitted_readers(run, model)}["mask_on"]
    assert reader.predict(moved.z)[0].mean() > 0.9  # pushed past the direction's threshold


def test_draw_errors_are_one_line(faces):
    assert "unknown term 'blak hair'; nearest known terms: black hair" in fails("draw", faces, "blak hair")
    assert "expected one of prior, directions" in fails("draw", faces, "glasses", "--method", "gan")
    assert "expected 1..1024 images" in fails("draw", faces, "glasses", "-n", 0)


def test_draw_a_digit_on_mnist(mnist4, tmp_path):
    # the fixture's prior is small (800 steps on a 1-epoch run), so it needs more guidance than the default
    ok("draw", mnist4, "7", "-n", 16, "--guidance", 2, "--out", tmp_path / "seven.npz", "--device", "cpu")
    with np.load(tmp_path / "seven.npz") as f:
        images = f["images"]
        z = f["z"]
    assert images.shape == (16, 1, 28, 28)
    run, model = api.open_model(mnist4, "cpu")
    label = {r.attribute.name: r for r in api.fitted_readers(run, model)}["label"]
    read = label.predict(z)[0]
    test, test_z = api.cached_codes(run, model, "test", NULL_PROGRESS)
    said = label.predict(test_z)[0] == 7
    sevens = np.asarray(test.labels) == 7
    # a 1-epoch latent-4 run: its reader finds only some real sevens and calls other digits 7 too; drawn
    # sevens must read as 7 about as often as real ones, and far more often than any code
    assert np.mean(read == 7) > max(0.8 * said[sevens].mean(), 2.5 * said.mean())
