"""The pretrained zoo: every shipped model loads, holds its checksums and its card's figures, works through the
CLI and the Python API as zoo:NAME, and nothing is ever written into the installed package."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import latentspace
from latentspace import api
from latentspace.api.measures import binarize, iw_subset
from latentspace.data.transforms import to_float
from latentspace.metrics.likelihood import importance_weighted_nll
from latentspace.train import zoo

ZOO = zoo.zoo_models()
NAMES = sorted(ZOO)
CLI = [sys.executable, "-m", "latentspace"]
pytestmark = pytest.mark.skipif(not ZOO, reason="this checkout ships no zoo (zoo/build.py makes it)")


def tree_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def cli(*args: str, env: dict[str, str] | None = None, prefix: list[str] | None = None):
    return subprocess.run([*(prefix or []), *CLI, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_the_zoo_holds_the_promised_models_within_its_budget():
    assert {"mnist", "faces", "shapes"} <= set(ZOO)
    total = sum(m.size_bytes for m in ZOO.values())
    assert total <= 30_000_000, f"the zoo is {total / 1e6:.1f} MB"
    for model in ZOO.values():
        assert set(model.files) == set(tree_digest(model.source)), f"{model.name}: index and folder differ"
        assert (model.source / zoo.CARD).read_text().startswith(f"# zoo:{model.name}")
        assert "trainer_state.safetensors" not in model.files  # a zoo model is for use, not for resuming


@pytest.mark.parametrize("name", NAMES)
def test_each_model_loads_and_reproduces_its_card(name, mnist_dir):
    model = latentspace.load(f"zoo:{name}")
    card = ZOO[name].card
    run = api.open_run(f"zoo:{name}")
    assert run.path.parent == zoo.zoo_cache_dir()
    test = run.dataset("test")
    x = to_float(test.images[:500])  # a float tensor in [0, 1]
    with torch.no_grad():
        mse = float(((model.decode(model.encode(x).mean) - x) ** 2).mean())
    # 500 of the test images the card measured in full: within 10% of its MSE
    assert mse == pytest.approx(card["mse"], rel=0.10), (name, mse, card["mse"])
    if card["nll"] is not None:  # a density model: the IW bound again on the card's own seeded test images, with
        # at most 100 samples (a bound no tighter than the card's k) and other draws: within a nat or two
        subset = test.images[iw_subset(len(test), card["nll_n"], 0)]
        images = binarize(subset, 0) if card["nll_binarized"] else subset
        k = min(100, card["nll_k"])
        iw = importance_weighted_nll(model, images, k=k, generator=torch.Generator().manual_seed(1))
        assert card["nll"] - 1.5 <= iw.nll_nats <= card["nll"] + 3, (name, iw.nll_nats, card["nll"])
    evaluation = api.cached_evaluation(f"zoo:{name}", None)
    assert evaluation is not None, f"zoo:{name} ships no evaluation for its weights"
    assert evaluation.reconstruction.psnr_db == pytest.approx(card["psnr"])


def test_a_damaged_install_is_refused_naming_the_file(tmp_path, monkeypatch):
    name = NAMES[0]
    shutil.copytree(zoo.PACKAGE_DIR, tmp_path / "pretrained")
    weights = tmp_path / "pretrained" / name / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0xFF
    weights.write_bytes(bytes(raw))
    monkeypatch.setattr(zoo, "PACKAGE_DIR", tmp_path / "pretrained")
    monkeypatch.setenv("LATENTSPACE_CACHE", str(tmp_path / "cache"))
    zoo.zoo_models.cache_clear()
    try:
        with pytest.raises(ValueError, match=f"{weights}: checksum mismatch"):
            zoo.resolve_run(f"zoo:{name}")
        assert not list((tmp_path / "cache" / "zoo").iterdir())  # no half copy left behind
    finally:
        zoo.zoo_models.cache_clear()


def test_unknown_names_are_one_line_errors_listing_the_zoo():
    with pytest.raises(ValueError, match="zoo:nope: no such pretrained model; known: zoo:"):
        api.open_run("zoo:nope")
    done = cli("reconstruct", "zoo:nope", "--out", "never.png")
    assert done.returncode == 2
    line = done.stderr.strip()
    assert "\n" not in line and all(f"zoo:{n}" in line for n in NAMES), done.stderr
    listed = cli("zoo")
    assert listed.returncode == 0 and all(f"zoo:{n}" in listed.stdout for n in NAMES)
    assert "CPU-min" in listed.stdout


def _read_only(package: Path) -> list[str] | None:
    """A command prefix that runs with the installed package mounted read-only, or None without the rights."""
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True)
    if probe.returncode != 0:
        return None
    script = f'mount --bind -o ro "{package}" "{package}" && exec "$0" "$@"'
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script]


def test_verbs_on_zoo_models_never_write_into_a_read_only_install(tmp_path, mnist_dir):
    package = Path(latentspace.__file__).resolve().parent
    prefix = _read_only(package)
    if prefix is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must be able to mount the package read-only (unshare -m as root)")
        pytest.skip("no rights to mount the package read-only here")
    before = tree_digest(package / "pretrained")
    env = {"LATENTSPACE_CACHE": str(tmp_path / "cache")}
    done = cli("interpolate", "zoo:mnist", "3", "17", "--out", str(tmp_path / "path.png"), env=env, prefix=prefix)
    assert done.returncode == 0, done.stderr
    done = cli("attributes", "zoo:faces", env=env, prefix=prefix)  # writes directions.json beside the run
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "path.png").stat().st_size > 0
    copies = sorted(p.name.split("-")[0] for p in (tmp_path / "cache" / "zoo").iterdir())
    assert copies == ["faces", "mnist"]
    assert tree_digest(package / "pretrained") == before


def test_python_api_verbs_take_zoo_names(mnist_dir):
    result = api.interpolate("zoo:mnist", 3, 17, steps=5, score=False)
    assert result.paths.lerp.shape[0] == result.paths.pixel.shape[0] >= 5
    assert result.sources == ("test[3]", "test[17]")
    described = api.describe("zoo:faces", [0])
    assert len(described) == 1 and described[0].readings  # the faces' readers tell attributes above chance
    index = json.loads((zoo.PACKAGE_DIR / zoo.INDEX).read_text())
    assert index["format"] == zoo.INDEX_FORMAT and np.isfinite(ZOO["mnist"].card["nll"])


def test_the_explorer_serves_a_zoo_model():
    from fastapi.testclient import TestClient

    from latentspace.explorer import create_app

    client = TestClient(create_app("zoo:faces"))
    info = client.get("/api/info").json()
    assert info["latent_dim"] == ZOO["faces"].card["latent_dim"] and info["image_shape"] == [3, 64, 64]
    assert info["n_train"] == 20000 and info["default_colouring"] == "hair_color"
    decoded = client.post("/api/maps/pca/decode", json={"x": 0.0, "y": 0.0})
    assert decoded.status_code == 200 and len(decoded.json()["z"]) == info["latent_dim"]
    assert decoded.json()["image"]


@pytest.mark.slow
def test_demo_from_the_zoo_trains_nothing_and_says_so(tmp_path):
    env = {"LATENTSPACE_CACHE": str(tmp_path / "cache")}
    done = cli("demo", "--zoo", "--out", str(tmp_path / "demo"), env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    page = (tmp_path / "demo" / "report.html").read_text()
    assert "pretrained: zoo:faces" in page
    (copy,) = (tmp_path / "cache" / "zoo").iterdir()
    assert (copy / "metrics.jsonl").read_bytes() == (ZOO["faces"].source / "metrics.jsonl").read_bytes()
    assert (copy / "model.safetensors").read_bytes() == (ZOO["faces"].source / "model.safetensors").read_bytes()
    assert not (tmp_path / "demo" / "faces-vae").exists()  # no run folder trained beside the figures
    assert len(list((tmp_path / "demo" / "figures").glob("*.png"))) >= 6
    steps = re.search(r"time per step: (.*)", done.stdout).group(1)  # every step once, in order, timed
    assert [name for name, _ in re.findall(r"([\w-]+): (\d+) s", steps)] == ["1-2", *map(str, range(3, 10))]


def test_runs_on_the_zoos_data_get_its_evaluator_and_other_data_none():
    faces = json.loads((ZOO["faces"].source / "config.json").read_text())["data"]
    found = zoo.evaluators_for({**faces, "data_dir": "/elsewhere"})  # where the data was read from is no matter
    assert [name for name, _ in found] == ["zoo:faces"]
    assert (found[0][1] / "model.safetensors").is_file() and zoo.PACKAGE_DIR not in found[0][1].parents
    assert zoo.evaluators_for({**faces, "seed": faces["seed"] + 1}) == []
    assert zoo.evaluators_for({**faces, "size": 32}) == []
