"""Tiny trained run folders for the latent-verb tests (api, CLI): each kind is trained once per session with the
real trainer, and every test module works on its own copy, so caches one module writes never leak into another.

Kinds: "mnist2" / "mnist4" (latent 2 / 4, 2,000 MNIST train and 2,000 test images, 1 epoch) and "faces"
(latent 8, generated faces at 32 px, 2,000 + 2,000, 1 epoch; every factor known).
"""
from __future__ import annotations

import shutil
from functools import lru_cache
from pathlib import Path

import torch

from latentspace.data import load
from latentspace.models import ModelConfig, build
from latentspace.train import TrainConfig, fit

N_IMAGES = 2000
TRAIN = TrainConfig(epochs=1, batch_size=50, lr=3e-3, warmup_steps=2, seed=0, eval_batch_size=1000, probe_size=200)
KINDS = ("mnist2", "mnist4", "faces")


def _data_info(kind: str, data_dir: Path | None) -> dict:
    if kind == "faces":
        return {"name": "faces", "size": 32, "channels": 3, "data_dir": None, "seed": 0, "n": N_IMAGES}
    return {"name": "mnist", "size": None, "channels": None, "data_dir": str(data_dir), "seed": 0, "n": N_IMAGES}


@lru_cache(maxsize=None)
def pristine_run(kind: str, base: Path, data_dir: Path | None) -> Path:
    """Train run ``kind`` into ``base``/pristine-<kind> (once per session); callers must not modify it."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    info = _data_info(kind, data_dir)
    train, test = (load(info["name"], split=s, data_dir=info["data_dir"], size=info["size"],
                        channels=info["channels"], seed=0, n=N_IMAGES) for s in ("train", "test"))
    latent = {"mnist2": 2, "mnist4": 4, "faces": 8}[kind]
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = build(ModelConfig(image_shape=train.shape, latent_dim=latent, width=8, hidden=64))
        out = base / f"pristine-{kind}"
        fit(model, train, test, TRAIN, out, "cpu", data_info=info)
    finally:
        torch.set_num_threads(before)
    return out


def run_copy(kind: str, tmp_path_factory, data_dir: Path | None = None) -> Path:
    """A fresh copy of the session's run ``kind`` in a new temporary folder."""
    src = pristine_run(kind, tmp_path_factory.getbasetemp(), data_dir)
    dst = tmp_path_factory.mktemp(kind) / "run"
    shutil.copytree(src, dst)
    return dst


def retrain(run_dir: Path) -> bytes:
    """Stand in for more training: nudge one weight and save the model, so its content (and every cache key
    derived from it) changes. Returns the old weights file's bytes, for tests that put them back."""
    from latentspace.models import load_model, save_model

    path = Path(run_dir) / "model.safetensors"
    before = path.read_bytes()
    model = load_model(run_dir)
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] += 1e-3
    save_model(model, run_dir)
    return before
