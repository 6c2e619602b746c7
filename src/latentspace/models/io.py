"""A model on disk: `config.json` (key "model") + `model.safetensors`, rebuilt by one loader. No pickle."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from latentspace.models.autoencoder import Autoencoder
from latentspace.models.config import ModelConfig
from latentspace.utils.files import read_json, read_safetensors, save_safetensors, write_json

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def save_model(model: Autoencoder, run_dir: str | Path) -> Path:
    """Write the weights atomically and set the "model" entry of ``config.json`` (other entries are kept)."""
    run_dir = Path(run_dir)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    meta = {"format": "latentspace", "model_config": json.dumps(model.config.to_dict())}
    save_safetensors(run_dir / WEIGHTS, state, meta)
    config_path = run_dir / CONFIG
    config = read_json(config_path) if config_path.exists() else {}
    if config.get("model") != model.config.to_dict():
        write_json(config_path, {**config, "model": model.config.to_dict()})
    return run_dir / WEIGHTS


def read_model_config(run_dir: str | Path) -> ModelConfig:
    path = Path(run_dir) / CONFIG
    config = read_json(path)
    if "model" not in config:
        raise ValueError(f"{path}: has no 'model' entry; is this a latentspace run folder?")
    try:
        return ModelConfig.from_dict(config["model"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: invalid model config: {e}") from None


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a weights file; a missing, truncated or tampered file raises ValueError naming it."""
    return read_safetensors(path)[0]


def load_model(run_dir: str | Path, device: str | torch.device = "cpu") -> Autoencoder:
    """Rebuild the model of a run folder, in eval mode, on ``device``."""
    run_dir = Path(run_dir)
    config = read_model_config(run_dir)
    model = Autoencoder(config)
    weights_path = run_dir / WEIGHTS
    check_weights(model, read_weights(weights_path), weights_path)
    return model.to(device).eval()


def require_finite(state: dict[str, torch.Tensor], path: Path) -> None:
    """Refuse weights holding NaN or inf: every code and image made from them would be garbage."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ValueError(f"{path}: tensor {bad[0]} holds NaN or inf values ({len(bad)} tensor(s) affected)")


def check_weights(model: Autoencoder, state: dict[str, torch.Tensor], path: Path) -> None:
    """Load ``state`` into ``model``; missing, extra or mis-shaped tensors raise ValueError naming the file."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise ValueError(f"{path}: weights do not match config.json (missing {missing[:3]}, unexpected {extra[:3]})")
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise ValueError(
                f"{path}: tensor {k} has shape {tuple(state[k].shape)}, config.json implies {tuple(v.shape)}"
            )
    require_finite(state, path)
    model.load_state_dict(state)
