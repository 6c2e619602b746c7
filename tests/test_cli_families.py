"""Every model family through the CLI: trained, reloaded and run through every latent verb (encode, decode,
sample, reconstruct, interpolate, traverse, evaluate, report) and the explorer's API, on a tiny real run."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from latentspace.cli.main import app
from latentspace.models import OBJECTIVES, load_model

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette asks for httpx2 on import
    from fastapi.testclient import TestClient

from latentspace.explorer import create_app

pytestmark = pytest.mark.usefixtures("one_torch_thread", "quick_evaluator")

runner = CliRunner()
BEFORE = ("ae", "vae", "beta-vae", "beta-tcvae")  # covered by the other CLI tests
FAMILY = {"vq-vae": ["--code-dim", "2", "--codebook", "32"], "iwae": ["--k", "3"], "vamp": ["--pseudo-inputs", "8"]}
CHEAP = ["--k", "4", "--iw-images", "16", "--samples", "64", "--diffusion-steps", "30"]


def ok(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result


@pytest.mark.parametrize("family", [name for name in OBJECTIVES if name not in BEFORE])
def test_family_trains_reloads_and_runs_every_verb(family, tmp_path, mnist_dir):
    run = tmp_path / "run"
    ok("train", "--out", run, "--data", "mnist", "--data-dir", mnist_dir, "--n", 300, "--epochs", 1,
       "--batch-size", 50, "--model", family, "--latent-dim", 4, "--width", 4, "--hidden", 32, "--device", "cpu",
       *FAMILY.get(family, []))
    config = json.loads((run / "config.json").read_text())["model"]
    assert config["objective"] == family
    model = load_model(run)
    assert model.config.objective == family and model.config.latent_dim == 4

    ok("encode", run, "mnist", "--data-dir", mnist_dir, "--n", 20, "--out", tmp_path / "codes.npz", "--device", "cpu")
    z = np.load(tmp_path / "codes.npz")["z"]
    assert z.shape == (20, 4) and np.isfinite(z).all()
    ok("decode", run, tmp_path / "codes.npz", "--out", tmp_path / "decoded", "--device", "cpu")
    assert len(list((tmp_path / "decoded").glob("*.png"))) >= 20
    for sampler in ("prior", "gmm"):  # the diffusion prior is fitted and sampled by evaluate below
        ok("sample", run, "--n", 8, "--sampler", sampler, "--out", tmp_path / f"{sampler}.npz", "--device", "cpu")
        drawn = np.load(tmp_path / f"{sampler}.npz")
        assert drawn["z"].shape == (8, 4) and np.isfinite(drawn["images"]).all()
    ok("reconstruct", run, "--data", "mnist", "--data-dir", mnist_dir, "--n", 8, "--out", tmp_path / "rec.png",
       "--device", "cpu")
    ok("interpolate", run, 0, 1, "--no-score", "--out", tmp_path / "lerp.png", "--device", "cpu")
    ok("traverse", run, "--steps", 3, "--out", tmp_path / "trav.png", "--device", "cpu")
    shown = ok("evaluate", run, *CHEAP, "--device", "cpu").output
    evaluation = json.loads((run / "evaluation.json").read_text())["evaluation"]
    has_density = OBJECTIVES[family].variational
    assert (evaluation["reconstruction"]["iw_nll_nats"] is not None) == has_density, shown
    ok("report", run, *CHEAP, "--out", tmp_path / "report.html", "--device", "cpu")
    assert f"{family}" in (tmp_path / "report.html").read_text()

    client = TestClient(create_app(run))
    assert client.get("/api/info").status_code == 200
    decoded = client.post("/api/decode", json={"z": z[0].tolist(), "neighbours": 2})
    assert decoded.status_code == 200 and decoded.json()["image"]
