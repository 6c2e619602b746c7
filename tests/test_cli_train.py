"""The training verbs end to end on a tiny real run: train -> encode -> decode -> reconstruct -> sample."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from latentspace.cli.main import app
from latentspace.data import load
from latentspace.latent.codes import decode_latents
from latentspace.train import open_run
from latentspace.viz.grid import image_grid

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("LATENTSPACE_DATA", REPO.parent / "shared" / "data"))
pytestmark = pytest.mark.skipif(not (DATA_DIR / "mnist" / "train-images-idx3-ubyte.gz").exists(),
                                reason=f"real MNIST not found under {DATA_DIR} (set LATENTSPACE_DATA)")
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def ok(*args: str):
    result = invoke(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    before = torch.get_num_threads()
    out = tmp_path_factory.mktemp("cli") / "run"
    ok("train", "--data", "mnist", "--data-dir", DATA_DIR, "--n", 1000, "--model", "vae", "--latent-dim", 2,
       "--epochs", 1, "--batch-size", 100, "--lr", 3e-3, "--out", out, "--device", "cpu", "--threads", 1)
    yield out
    torch.set_num_threads(before)


def test_train_writes_a_run_of_the_requested_shape(run_dir):
    run = open_run(run_dir)
    assert run.model_config.latent_dim == 2 and run.model_config.image_shape == (1, 28, 28)
    assert run.model_config.objective == "vae" and run.model_config.likelihood == "bernoulli"
    assert (run.train_config.epochs, run.train_config.batch_size, run.train_config.lr) == (1, 100, 3e-3)
    assert run.data_info == {"name": "mnist", "data_dir": str(DATA_DIR.resolve()), "n": 1000, "seed": 0,
                             "size": None, "channels": None}
    (record,) = run.metrics()
    assert (record["epoch"], record["step"]) == (1, 10)
    assert np.isfinite(record["test_elbo"]) and record["test_elbo"] < 0


def test_train_refuses_to_overwrite_a_run_and_checks_resume_options(run_dir):
    before = (run_dir / "metrics.jsonl").read_bytes()
    result = invoke("train", "--data", "mnist", "--out", run_dir)
    assert result.exit_code != 0 and "pass --resume" in str(result.exception)
    result = invoke("train", "--resume", "--latent-dim", 3, "--out", run_dir)
    assert result.exit_code != 0 and "--latent-dim 3 differs from the run's 2" in str(result.exception)
    assert (run_dir / "metrics.jsonl").read_bytes() == before


def test_encode_a_dataset_writes_codes_with_labels(run_dir, tmp_path):
    ok("encode", run_dir, "mnist", "--n", 20, "--out", tmp_path / "z.npz", "--device", "cpu")
    with np.load(tmp_path / "z.npz", allow_pickle=False) as f:
        assert sorted(f.files) == ["class_names", "labels", "z"]
        z, labels, classes = f["z"], f["labels"], f["class_names"]
    test = load("mnist", split="test", data_dir=DATA_DIR, n=20)
    assert z.shape == (20, 2) and z.dtype == np.float32
    np.testing.assert_array_equal(labels, test.labels)
    assert classes.tolist() == list(test.class_names)
    model = open_run(run_dir).model()
    from latentspace.latent.codes import encode_images

    np.testing.assert_allclose(z, encode_images(model, test.images), rtol=1e-6, atol=1e-6)


def test_decode_then_encode_files_then_reconstruct(run_dir, tmp_path):
    z = np.array([[0.0, 0.0], [1.5, -1.0], [-2.0, 0.5]], dtype=np.float32)
    np.savez(tmp_path / "z.npz", z=z)
    ok("decode", run_dir, tmp_path / "z.npz", "--out", tmp_path / "dec", "--device", "cpu")
    assert sorted(p.name for p in (tmp_path / "dec").iterdir()) == ["0000.png", "0001.png", "0002.png", "grid.png"]
    expected = decode_latents(open_run(run_dir).model(), z)
    for i in range(3):
        png = np.asarray(Image.open(tmp_path / "dec" / f"{i:04d}.png"))
        assert png.shape == (28, 28)
        np.testing.assert_array_equal(png, expected[i, 0])
    assert Image.open(tmp_path / "dec" / "grid.png").size == image_grid(expected).size

    files = [tmp_path / "dec" / f"{i:04d}.png" for i in range(3)]
    ok("encode", run_dir, *files, "--out", tmp_path / "zf.npz", "--device", "cpu")
    with np.load(tmp_path / "zf.npz", allow_pickle=False) as f:
        assert sorted(f.files) == ["names", "z"] and f["z"].shape == (3, 2)
        assert f["names"].tolist() == [str(p) for p in files]

    ok("reconstruct", run_dir, *files[:2], "--out", tmp_path / "rec.png", "--device", "cpu")
    blank = np.zeros((4, 1, 28, 28), np.uint8)
    assert Image.open(tmp_path / "rec.png").size == image_grid(blank, ncols=2, row_labels=("input", "recon")).size


def test_reconstruct_dataset_images_gives_two_rows(run_dir, tmp_path):
    ok("reconstruct", run_dir, "--data", "mnist", "-n", 5, "--out", tmp_path / "rec.png", "--device", "cpu")
    img = Image.open(tmp_path / "rec.png")
    blank = np.zeros((10, 1, 28, 28), np.uint8)
    assert img.size == image_grid(blank, ncols=5, row_labels=("input", "recon")).size
    assert img.mode == "L"


def test_sample_is_seeded(run_dir, tmp_path):
    for name, seed in (("a.png", 0), ("b.png", 0), ("c.png", 1)):
        ok("sample", run_dir, "-n", 9, "--seed", seed, "--out", tmp_path / name, "--device", "cpu")
    a, b, c = (np.asarray(Image.open(tmp_path / n)) for n in ("a.png", "b.png", "c.png"))
    assert a.shape == image_grid(np.zeros((9, 1, 28, 28), np.uint8)).size[::-1]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    result = invoke("sample", run_dir, "--sampler", "nope", "--out", tmp_path / "d.png")
    assert result.exit_code == 2 and "'nope'" in result.output and "prior, gmm, diffusion" in result.output


def test_bad_inputs_are_one_line_errors(run_dir, tmp_path):
    result = invoke("encode", tmp_path, "mnist", "--out", tmp_path / "z.npz")
    assert "not a run folder" in str(result.exception)
    result = invoke("encode", run_dir, tmp_path / "missing.png", "--out", tmp_path / "z.npz")
    assert "missing.png: no such image file" in str(result.exception)
    (tmp_path / "x.png").write_bytes(b"not an image")
    result = invoke("decode", run_dir, tmp_path / "x.png", "--out", tmp_path / "d")
    assert "expected a codes file ending in .npz" in str(result.exception)
    np.savez(tmp_path / "w.npz", z=np.zeros((2, 5), np.float32))
    result = invoke("decode", run_dir, tmp_path / "w.npz", "--out", tmp_path / "d")
    assert "latent has 5 values, model expects 2" in str(result.exception)


def test_resume_extends_the_run(run_dir, tmp_path):
    copy = tmp_path / "run"
    copy.mkdir()
    for p in run_dir.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    ok("train", "--resume", "--epochs", 2, "--out", copy, "--device", "cpu", "--threads", 1)
    records = open_run(copy).metrics()
    assert [(r["epoch"], r["step"]) for r in records] == [(1, 10), (2, 20)]
    assert records[0] == open_run(run_dir).metrics()[0]
    assert json.loads((copy / "config.json").read_text())["train"]["epochs"] == 2
