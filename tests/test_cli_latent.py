"""The latent verbs end to end through the CLI on tiny real runs: each writes the files the library's figures
make from the same run, and prints its table."""
from __future__ import annotations

import json

import numpy as np
import pytest
from latent_runs import run_copy
from PIL import Image
from typer.testing import CliRunner

from latentspace import api
from latentspace.cli.main import app
from latentspace.latent.directions import load_directions
from latentspace.viz.figures import edit_strip, grid_figure, interpolation_figure
from latentspace.viz.grid import image_grid

pytestmark = pytest.mark.usefixtures("one_torch_thread", "quick_evaluator")

runner = CliRunner()


def ok(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result


@pytest.fixture(scope="module")
def mnist2(tmp_path_factory, mnist_dir):
    return run_copy("mnist2", tmp_path_factory, mnist_dir.parent)


@pytest.fixture(scope="module")
def mnist4(tmp_path_factory, mnist_dir):
    return run_copy("mnist4", tmp_path_factory, mnist_dir.parent)


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return run_copy("faces", tmp_path_factory)


def pixels(path):
    with Image.open(path) as img:
        return np.asarray(img)


def test_interpolate_a_pair_writes_the_figure_and_the_animation(mnist2, tmp_path):
    result = ok("interpolate", mnist2, 4, 9, "--steps", 5, "--out", tmp_path / "i.png", "--gif", "--device", "cpu")
    for word in ("path", "pixel", "lerp", "slerp", "test[4]", "i.gif"):
        assert word in result.output
    expected = api.interpolate(mnist2, 4, 9, steps=5, device="cpu")  # the evaluator is cached now
    np.testing.assert_array_equal(pixels(tmp_path / "i.png"), np.asarray(interpolation_figure(expected.paths,
                                                                                             expected.scores)))
    with Image.open(tmp_path / "i.gif") as gif:
        assert gif.n_frames == 5
    result = runner.invoke(app, ["interpolate", str(mnist2), "4"])
    assert result.exit_code != 0 and "give two images A and B" in result.output


def test_interpolate_pairs_prints_and_saves_the_realness_table(mnist2, tmp_path):
    result = ok("interpolate", mnist2, "--pairs", 4, "--steps", 5, "--json", tmp_path / "t.json", "--device", "cpu")
    assert "4 random test pairs" in result.output and "±" in result.output
    table = json.loads((tmp_path / "t.json").read_text())
    assert table["n_pairs"] == 4 and sorted(table["paths"]) == ["lerp", "pixel", "slerp"]
    assert all(np.isfinite(v) for p in table["paths"].values() for v in p.values())


def test_manifold_writes_the_grid_or_the_planes_and_a_scatter(mnist2, mnist4, tmp_path):
    result = ok("manifold", mnist2, "--out", tmp_path / "m2", "--k", 6, "--device", "cpu")
    assert sorted(p.name for p in (tmp_path / "m2").iterdir()) == ["grid.png", "scatter.png"]
    expected = api.manifold(mnist2, k=6)
    np.testing.assert_array_equal(pixels(tmp_path / "m2" / "grid.png"),
                                  np.asarray(grid_figure(expected.grids[0].images, 6, expected.grids[0].title)))
    assert pixels(tmp_path / "m2" / "grid.png").shape[1] == 6 * 28
    assert Image.open(tmp_path / "m2" / "scatter.png").size == (600, 500)
    assert "grid.png" in result.output
    ok("manifold", mnist4, "--out", tmp_path / "m4", "--k", 5, "--anchors", "1,2,3", "--device", "cpu")
    assert sorted(p.name for p in (tmp_path / "m4").iterdir()) == ["pca_plane.png", "plane.png", "scatter.png"]
    assert pixels(tmp_path / "m4" / "plane.png").shape[1] == 5 * 28
    result = runner.invoke(app, ["manifold", str(mnist4), "--anchors", "1,x", "--out", str(tmp_path / "m")])
    assert result.exit_code != 0 and "comma-separated test indices" in result.output


def test_evolution_writes_a_frame_per_epoch(mnist4, tmp_path):
    result = ok("evolution", mnist4, "--out", tmp_path / "e.gif")
    with Image.open(tmp_path / "e.gif") as gif:
        assert gif.n_frames == 2 and gif.size == (600, 500)
    assert "2 frames (2 epochs, 0..1)" in result.output and "PCA" in result.output
    refused = runner.invoke(app, ["evolution", str(mnist4), "--max-frames", "1"])
    assert refused.exit_code == 2 and "--max-frames" in refused.output


def test_attributes_save_directions_then_edit_uses_them(faces, tmp_path):
    result = ok("attributes", faces, "--method", "mean", "--condition-on", "glasses", "--device", "cpu")
    for word in ("attribute", "method", "accuracy", "baseline", "mask_on"):
        assert word in result.output
    saved = {d.name: d for d in load_directions(faces / "directions.json")}
    assert saved["mask_on"].conditioned_on == ("glasses",) and saved["glasses"].method == "mean"
    ok("edit", faces, 3, "--attr", "mask_on", "--strengths", "-2,0,2", "--out", tmp_path / "s.png", "--device", "cpu")
    images = api.edit(faces, 3, "mask_on", [-2.0, 0.0, 2.0])
    np.testing.assert_array_equal(pixels(tmp_path / "s.png"), np.asarray(edit_strip(images, [-2, 0, 2], "mask_on")))
    result = runner.invoke(app, ["edit", str(faces), "3", "--attr", "beard", "--out", str(tmp_path / "b.png")])
    assert result.exit_code != 0 and "has no direction 'beard'" in str(result.exception)


def test_traverse_writes_the_grid_and_prints_the_axis_table(faces, tmp_path):
    result = ok("traverse", faces, "--image", 2, "--range", 2, "--steps", 5, "--out", tmp_path / "t.png",
                "--device", "cpu")
    for word in ("axis", "holds", "best axis", "MIG", "mask_on"):
        assert word in result.output
    img = pixels(tmp_path / "t.png")
    width_of_tiles = 5 * (32 + 2)  # scale 1 at 32 px, pad 2
    assert img.shape[1] > width_of_tiles and img.shape[2] == 3
    rows = image_grid(np.zeros((8 * 5, 3, 32, 32), np.uint8), ncols=5).height
    assert img.shape[0] > rows  # 8 rows of tiles, plus value header and title


def test_export_writes_projector_files_and_says_how_to_open_them(mnist2, tmp_path):
    result = ok("export", mnist2, "--tensorboard", tmp_path / "tb", "--n", 30, "--device", "cpu")
    assert f"tensorboard --logdir {tmp_path / 'tb'}" in result.output.replace("\n", "")
    assert np.loadtxt(tmp_path / "tb" / "tensors.tsv").shape == (30, 2)
    assert len((tmp_path / "tb" / "metadata.tsv").read_text().splitlines()) == 30  # one column: no header


def test_sample_from_a_gmm_is_cached_and_seeded(mnist4, tmp_path):
    for name in ("a.png", "b.png"):
        ok("sample", mnist4, "--sampler", "gmm", "--components", 3, "-n", 9, "--out", tmp_path / name,
           "--device", "cpu")
    saved = json.loads((mnist4 / "gmm.json").read_text())
    assert saved["key"]["components"] == 3 and len(saved["sampler"]["weights"]) == 3
    np.testing.assert_array_equal(pixels(tmp_path / "a.png"), pixels(tmp_path / "b.png"))
    assert pixels(tmp_path / "a.png").shape == image_grid(np.zeros((9, 1, 28, 28), np.uint8)).size[::-1]
