"""The run folder is the unit of state: everything needed to reload, resume or report a training run.

Layout::

    config.json                {"model": ModelConfig, "train": TrainConfig, "data": {...}, "latentspace_version"}
    model.safetensors          the latest weights (latentspace.models.save_model)
    trainer_state.safetensors  optimiser, RNG states and exact position (train.checkpoint)
    metrics.jsonl              one record per completed epoch
    snapshots.safetensors      probe_index (P,) int64, probe_labels (P,), epoch_0000 ... epoch_NNNN (P, D) float32
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latentspace.data import ImageSet
from latentspace.data import load as load_data
from latentspace.models import Autoencoder, ModelConfig, load_model
from latentspace.train.config import TrainConfig
from latentspace.train.zoo import resolve_run
from latentspace.utils.files import (
    append_jsonl,
    read_json,
    read_jsonl,
    read_safetensors,
    save_safetensors,
    write_atomic,
    write_json,
)
from latentspace.utils.version import __version__

CONFIG = "config.json"
MODEL = "model.safetensors"
TRAINER_STATE = "trainer_state.safetensors"
METRICS = "metrics.jsonl"
SNAPSHOTS = "snapshots.safetensors"
DATA_KEYS = ("name", "size", "channels", "data_dir", "seed", "n")


def snapshot_key(epoch: int) -> str:
    """Snapshot name after ``epoch`` completed epochs (0 = before training)."""
    return f"epoch_{epoch:04d}"


@dataclass(frozen=True)
class Run:
    """A run folder opened for reading. ``config`` is the parsed config.json."""

    path: Path
    config: dict[str, Any]

    @property
    def model_config(self) -> ModelConfig:
        return ModelConfig.from_dict(self.config["model"])

    @property
    def train_config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.config["train"])

    @property
    def data_info(self) -> dict[str, Any]:
        return dict(self.config.get("data") or {})

    @property
    def has_checkpoint(self) -> bool:
        return (self.path / TRAINER_STATE).is_file()

    def model(self, device: str = "cpu") -> Autoencoder:
        """The latest weights, rebuilt on ``device`` in eval mode."""
        return load_model(self.path, device)

    def dataset(self, split: str | None = "test") -> ImageSet:
        """The run's data reloaded from the recorded source ("train", "test" or None for all)."""
        data = self.data_info
        if not data.get("name"):
            raise ValueError(f"{self.path / CONFIG}: has no 'data' entry naming the dataset it was trained on")
        return load_data(
            data["name"], split=split, data_dir=data.get("data_dir"), size=data.get("size"),
            channels=data.get("channels"), seed=data.get("seed") or 0, n=data.get("n"),
        )

    def metrics(self) -> list[dict[str, Any]]:
        """One record per completed epoch, in order."""
        return read_metrics(self.path)

    def snapshots(self) -> dict[str, np.ndarray]:
        """Probe posterior means by epoch (see module docstring); empty when the run stored none."""
        return read_snapshots(self.path / SNAPSHOTS)


def open_run(run_dir: str | Path) -> Run:
    """Open an existing run folder, or a pretrained one named ``zoo:NAME`` (train.zoo); a folder that is not one
    raises ValueError saying why."""
    path = resolve_run(run_dir)
    if not path.is_dir():
        raise ValueError(f"{path}: no such run folder")
    if not (path / CONFIG).is_file():
        raise ValueError(f"{path}: not a run folder (no {CONFIG}); train one with `latentspace train --out {path}`")
    config = read_json(path / CONFIG)
    missing = [k for k in ("model", "train") if not isinstance(config, dict) or k not in config]
    if missing:
        raise ValueError(f"{path / CONFIG}: missing {' and '.join(repr(k) for k in missing)}; not a training run")
    run = Run(path=path, config=config)
    try:
        run.model_config, run.train_config  # validate both now: errors belong to opening, not to later use
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path / CONFIG}: invalid config ({e})") from None
    _check_data_entry(path / CONFIG, config.get("data"))
    return run


def _check_data_entry(path: Path, data: Any) -> None:
    """The "data" entry names where the run's images come from; null means none recorded."""
    if data is None:
        return
    if not isinstance(data, dict):
        raise ValueError(f"{path}: 'data' must be an object or null, got {type(data).__name__}")
    for key, value in data.items():
        expected = str if key in ("name", "data_dir") else int
        if value is not None and (not isinstance(value, expected) or isinstance(value, bool)):
            raise ValueError(f"{path}: data.{key} must be {expected.__name__} or null, got {value!r}")


def is_run_folder(path: str | Path) -> bool:
    return (Path(path) / CONFIG).is_file()


def write_run_config(
    run_dir: Path, model_config: ModelConfig, train_config: TrainConfig, data_info: dict[str, Any] | None
) -> Path:
    """Write config.json (atomically), replacing any earlier one."""
    data = {k: (data_info or {}).get(k) for k in DATA_KEYS}
    config = {
        "model": model_config.to_dict(),
        "train": train_config.to_dict(),
        "data": data,
        "latentspace_version": __version__,
    }
    return write_json(Path(run_dir) / CONFIG, config)


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    return read_jsonl(Path(run_dir) / METRICS)


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    append_jsonl(Path(run_dir) / METRICS, record)


def keep_metrics_through(run_dir: Path, epoch: int) -> None:
    """Rewrite metrics.jsonl without records of epochs after ``epoch`` (written after the checkpoint being
    resumed from) and without a torn last line."""
    path = Path(run_dir) / METRICS
    kept = [r for r in read_jsonl(path) if int(r.get("epoch", 0)) <= epoch]
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept)
    write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_snapshots(path: Path, snapshots: dict[str, np.ndarray]) -> Path:
    arrays = {k: np.ascontiguousarray(v) for k, v in snapshots.items()}
    return save_safetensors(path, arrays, {"format": "latentspace.snapshots/1"}, framework="numpy")


def read_snapshots(path: Path) -> dict[str, np.ndarray]:
    """All arrays of a snapshots file ({} when absent), float16 ones (the zoo's) as float32; a damaged file raises
    ValueError naming it."""
    if not path.exists():
        return {}
    arrays = read_safetensors(path, framework="numpy")[0]
    return {k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in arrays.items()}
