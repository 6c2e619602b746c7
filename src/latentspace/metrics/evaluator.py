"""The evaluator: a small CNN trained on a dataset's labels and discrete factors, one softmax head per target.

It judges images the autoencoder made: its max-class probability on a decoded image is the 'classifier
confidence' score of realness (metrics.realness), and its accuracy on real test images says how far that
score can be trusted. Targets are the label (head ``"label"``) and every discrete factor (head named for the
factor, e.g. faces' ``mask_on``); continuous factors are not targets.

The network halves the image with stride-2 convolutions (on CPUs several times faster to train than 3x3
convolutions with max-pooling, at the same accuracy) until the feature map side is at most 8 (28 -> 14 -> 7,
64 -> 32 -> 16 -> 8); one dense layer over the flattened map and its per-channel global max feeds every
head. It trains like the main trainer: the train split as one uint8 tensor on
the device, visited each epoch in a seeded permutation, in index slices of ``batch_size``.

On disk (``save_evaluator``): ``config.json`` (key "evaluator", plus optional metadata) and
``model.safetensors``; ``evaluator_for_run`` caches one in ``<run_dir>/evaluator/`` keyed by the dataset and
the config, retraining only when the key changes.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from latentspace.data import ImageSet
from latentspace.data.transforms import batch_rows, to_float
from latentspace.latent.codes import evaluating, model_device
from latentspace.utils.device import channels_last
from latentspace.utils.files import read_json, read_safetensors, save_safetensors, write_json
from latentspace.utils.progress import NULL_PROGRESS, Progress

logger = logging.getLogger(__name__)

LABEL_HEAD = "label"
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
CACHE_DIR = "evaluator"
MAX_FEATURE_SIDE = 8
PROGRESS_EVERY_STEPS = 10


class Head(NamedTuple):
    """One classification target: its name, number of classes and the class (value) names."""

    name: str
    n_classes: int
    values: tuple[str, ...]


@dataclass(frozen=True)
class EvaluatorConfig:
    """image_shape: (C, H, W) with C 1 or 3 and H, W >= 8. heads: one Head per target, unique names.

    width: channels of the first conv stage (doubling per stage, capped at 4x). hidden: dense width.
    Training: at least ``epochs`` passes, more when needed to reach ``min_steps`` optimiser steps (small
    datasets); Adam at ``lr`` with cosine decay to 0; ``seed`` fixes initial weights and batch order.
    """

    image_shape: tuple[int, int, int]
    heads: tuple[Head, ...]
    width: int = 16
    hidden: int = 256
    epochs: int = 2
    min_steps: int = 600
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.image_shape)
        object.__setattr__(self, "image_shape", shape)
        if len(shape) != 3 or shape[0] not in (1, 3) or min(shape[1:]) < MAX_FEATURE_SIDE:
            raise ValueError(f"EvaluatorConfig.image_shape must be (C, H, W) with C 1 or 3 and H, W >= 8, got {shape}")
        heads = tuple(Head(str(h[0]), int(h[1]), tuple(str(v) for v in h[2])) for h in self.heads)
        object.__setattr__(self, "heads", heads)
        if not heads:
            raise ValueError("EvaluatorConfig.heads is empty; an evaluator needs at least one target")
        names = [h.name for h in heads]
        if len(set(names)) != len(names) or any(not n or "." in n for n in names):
            raise ValueError(f"EvaluatorConfig.heads must have unique, non-empty names without '.', got {names}")
        for h in heads:
            if h.n_classes < 2 or len(h.values) != h.n_classes:
                raise ValueError(
                    f"EvaluatorConfig head {h.name!r} needs n_classes >= 2 and one value name per class, "
                    f"got {h.n_classes} classes and {len(h.values)} names"
                )
        for name in ("width", "hidden", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"EvaluatorConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.min_steps < 0 or not self.lr > 0:
            raise ValueError(f"EvaluatorConfig needs min_steps >= 0 and lr > 0, got {self.min_steps}, {self.lr}")

    def head(self, name: str | None) -> Head:
        """The head called ``name``; None: the label head if there is one, else the first head."""
        names = [h.name for h in self.heads]
        if name is None:
            name = LABEL_HEAD if LABEL_HEAD in names else names[0]
        if name not in names:
            raise ValueError(f"evaluator has no head {name!r}; heads: {', '.join(names)}")
        return self.heads[names.index(name)]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_shape"] = list(self.image_shape)
        d["heads"] = [{"name": h.name, "n_classes": h.n_classes, "values": list(h.values)} for h in self.heads]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EvaluatorConfig":
        heads = tuple(Head(h["name"], h["n_classes"], tuple(h["values"])) for h in d.get("heads", ()))
        return cls(**{**d, "image_shape": tuple(d["image_shape"]), "heads": heads})


def dataset_heads(images: ImageSet) -> tuple[Head, ...]:
    """The targets an image set offers: its labels (head "label") and each discrete factor, in factor order."""
    heads = []
    if images.labels is not None:
        n = max(len(images.class_names), int(images.labels.max(initial=0)) + 1)
        names = images.class_names if len(images.class_names) == n else tuple(str(i) for i in range(n))
        heads.append(Head(LABEL_HEAD, n, tuple(names)))
    for name in images.factor_names:
        if images.is_discrete(name):
            values = images.factor_values[name]
            heads.append(Head(name, len(values), tuple(values)))
    return tuple(h for h in heads if h.n_classes >= 2)


def head_targets(images: ImageSet, heads: tuple[Head, ...]) -> np.ndarray:
    """Class indices (N, len(heads)) int64 of every head's target; ValueError if the set lacks one."""
    columns = []
    for h in heads:
        if h.name == LABEL_HEAD and images.labels is not None:
            col = images.labels.astype(np.int64)
        elif h.name in images.factor_names and images.is_discrete(h.name):
            col = np.rint(images.factor(h.name)).astype(np.int64)
        else:
            raise ValueError(f"dataset {images.name!r} has no labels or discrete factor for evaluator head {h.name!r}")
        if len(col) and (col.min() < 0 or col.max() >= h.n_classes):
            raise ValueError(
                f"dataset {images.name!r}: head {h.name!r} targets span {col.min()}..{col.max()}, "
                f"expected 0..{h.n_classes - 1}"
            )
        columns.append(col)
    return np.stack(columns, axis=1) if columns else np.zeros((len(images), 0), np.int64)


class Evaluator(nn.Module):
    """Conv stages (4x4 stride-2 conv, ReLU) -> [flattened map, global max per channel] -> dense -> one linear
    softmax head per target.

    Build it with ``build_evaluator`` for seeded initial weights (this constructor uses torch's global RNG).
    ``test_accuracy_``: per-head accuracy on the test set it was trained against (None when unknown).
    """

    def __init__(self, config: EvaluatorConfig) -> None:
        super().__init__()
        self.config = config
        self.test_accuracy_: dict[str, float] | None = None
        c_in, side = config.image_shape[0], min(config.image_shape[1:])
        layers: list[nn.Module] = []
        stage = 0
        while side > MAX_FEATURE_SIDE:
            c_out = config.width * min(2**stage, 4)
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
            c_in, side, stage = c_out, side // 2, stage + 1
        h, w = config.image_shape[1] // 2**stage, config.image_shape[2] // 2**stage
        self.conv = nn.Sequential(*layers)
        self.dense = nn.Sequential(nn.Linear(c_in * (h * w + 1), config.hidden), nn.ReLU())
        self.heads = nn.ModuleDict({hd.name: nn.Linear(config.hidden, hd.n_classes) for hd in config.heads})

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) float in [0, 1] -> (B, hidden) features shared by every head."""
        f = self.conv(x * 2.0 - 1.0)
        # The flattened map says where things are (attributes tied to a place); its global max says what is
        # there wherever it is (a sprite's shape anywhere in the frame), which the flat map alone learns slowly.
        return self.dense(torch.cat([f.flatten(1), f.amax(dim=(2, 3))], dim=1))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: (B, C, H, W) float in [0, 1] -> logits (B, K_head) per head name."""
        h = self.embed(x)
        return {name: head(h) for name, head in self.heads.items()}

    def features(self, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """The penultimate features of uint8 images (N, C, H, W): float32 (N, hidden), the space in which
        sample sets are compared (Frechet distance, precision and recall) as FID does with Inception's."""
        self._check(images)
        batch_size = batch_size or batch_rows(self.config.image_shape)
        device = model_device(self)
        out = np.empty((len(images), self.config.hidden), np.float32)
        with evaluating(self):
            for i in range(0, len(images), batch_size):
                out[i : i + batch_size] = self.embed(to_float(images[i : i + batch_size]).to(device)).float().cpu()
        return out

    def predict_proba(
        self, images: np.ndarray, head: str | None = None, batch_size: int | None = None
    ) -> dict[str, np.ndarray] | np.ndarray:
        """Class probabilities of uint8 images (N, C, H, W): float32 (N, K) for ``head``, or a dict of them
        for every head when ``head`` is None."""
        self._check(images)
        batch_size = batch_size or batch_rows(self.config.image_shape)
        names = [h.name for h in self.config.heads] if head is None else [self.config.head(head).name]
        device = model_device(self)
        out = {n: np.empty((len(images), self.heads[n].out_features), np.float32) for n in names}
        with evaluating(self):
            for i in range(0, len(images), batch_size):
                logits = self(to_float(images[i : i + batch_size]).to(device))
                for n in names:
                    out[n][i : i + batch_size] = torch.softmax(logits[n].float(), dim=1).cpu().numpy()
        return out if head is None else out[names[0]]

    def max_prob(self, images: np.ndarray, head: str | None = None) -> np.ndarray:
        """The largest class probability per image, (N,) float32 in [1/K, 1]: how sure the evaluator is that
        an image is *some* class (high for clean real images, lower for blends and smudges)."""
        return self.predict_proba(images, head=self.config.head(head).name).max(axis=1)

    def accuracy(self, images: ImageSet) -> dict[str, float]:
        """Fraction of correct argmax predictions per head on a labelled image set."""
        targets = head_targets(images, self.config.heads)
        probs = self.predict_proba(images.images)
        return {
            h.name: float(np.mean(probs[h.name].argmax(1) == targets[:, j])) for j, h in enumerate(self.config.heads)
        }

    def _check(self, images: np.ndarray) -> None:
        expected = self.config.image_shape
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
            got = f"{images.dtype} {tuple(images.shape)}" if hasattr(images, "shape") else type(images).__name__
            raise ValueError(f"evaluator images must be a uint8 numpy array (N, C, H, W), got {got}")
        if tuple(images.shape[1:]) != expected:
            raise ValueError(f"evaluator images have shape (C, H, W) = {tuple(images.shape[1:])}, expected {expected}")


def build_evaluator(config: EvaluatorConfig) -> Evaluator:
    """A fresh evaluator whose initial weights depend only on ``config.seed`` (global RNG state is restored)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return Evaluator(config)


# -- training -------------------------------------------------------------------------------------


def train_evaluator(
    train_set: ImageSet,
    test_set: ImageSet | None = None,
    config: EvaluatorConfig | None = None,
    device: str | torch.device = "cpu",
    progress: Progress = NULL_PROGRESS,
) -> Evaluator:
    """Train an evaluator on ``train_set``'s targets (the config's heads; default: every target the set has).

    test_set: when given, the per-head test accuracy is measured into ``test_accuracy_``. Returns the evaluator
    on ``device``, in eval mode. ValueError when the set has no labels and no discrete factors (nothing to learn).
    """
    if config is None:
        heads = dataset_heads(train_set)
        if not heads:
            raise ValueError(
                f"dataset {train_set.name!r} has no labels and no discrete factors to train an evaluator on"
            )
        config = EvaluatorConfig(image_shape=train_set.shape, heads=heads)
    if train_set.shape != config.image_shape:
        raise ValueError(f"train images have shape {train_set.shape}, evaluator config expects {config.image_shape}")
    device = torch.device(device)
    images = torch.from_numpy(train_set.images).to(device)
    targets = torch.from_numpy(head_targets(train_set, config.heads)).to(device)
    model = channels_last(build_evaluator(config).to(device)).train()
    n = len(train_set)
    steps_per_epoch = math.ceil(n / config.batch_size)
    epochs = max(config.epochs, math.ceil(config.min_steps / steps_per_epoch))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    progress.start(epochs * steps_per_epoch, "evaluator")
    try:
        for epoch in range(epochs):
            order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed * 100003 + epoch))
            reported = 0
            for step, i in enumerate(range(0, n, config.batch_size), start=1):
                idx = order[i : i + config.batch_size].to(device)
                loss = _step(model, optimizer, to_float(images[idx]), targets[idx])
                schedule.step()
                if step % PROGRESS_EVERY_STEPS == 0 or step == steps_per_epoch:
                    progress.advance(step - reported, loss=float(loss))  # float() syncs: only every few steps
                    reported = step
    finally:
        progress.close()
    model.eval()
    if test_set is not None:
        model.test_accuracy_ = model.accuracy(test_set)
        logger.info("evaluator test accuracy on %s: %s", test_set.name, model.test_accuracy_)
    return model


def _step(model: Evaluator, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One Adam step on the summed cross-entropy of every head; x (B, C, H, W) in [0, 1], y (B, heads)."""
    optimizer.zero_grad(set_to_none=True)
    logits = model(x)
    loss = sum(F.cross_entropy(logits[h.name], y[:, j]) for j, h in enumerate(model.config.heads))
    loss.backward()
    optimizer.step()
    return loss.detach()


# -- on disk --------------------------------------------------------------------------------------


def save_evaluator(evaluator: Evaluator, folder: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model.safetensors`` then ``config.json`` ({"evaluator": config, "test_accuracy": ..., **metadata}),
    each atomically; config.json last, so a config.json whose key matches always sits beside its weights."""
    folder = Path(folder)
    state = {k: v.detach().to("cpu").contiguous() for k, v in evaluator.state_dict().items()}
    save_safetensors(folder / WEIGHTS, state, {"format": "latentspace-evaluator"})
    entry = {"evaluator": evaluator.config.to_dict(), "test_accuracy": evaluator.test_accuracy_}
    write_json(folder / CONFIG, {**(metadata or {}), **entry})
    return folder


def load_evaluator(folder: str | Path, device: str | torch.device = "cpu") -> Evaluator:
    """Rebuild a saved evaluator in eval mode on ``device``; a missing or mismatched file raises ValueError."""
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG, folder / WEIGHTS
    saved = read_json(config_path)
    entry = saved.get("evaluator")
    if entry is None:
        raise ValueError(f"{config_path}: has no 'evaluator' entry; is this an evaluator folder?")
    try:
        config = EvaluatorConfig.from_dict(entry)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{config_path}: invalid evaluator config: {e}") from None
    model = Evaluator(config)
    state = read_safetensors(weights_path)[0]
    expected = model.state_dict()
    bad = sorted(set(expected) ^ set(state))
    bad += [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if bad:
        raise ValueError(f"{weights_path}: weights do not match {config_path} (tensors {bad[:3]})")
    model.load_state_dict(state)
    model.test_accuracy_ = saved.get("test_accuracy")
    return channels_last(model.to(device).eval())


def cache_key(train_set: ImageSet, config: EvaluatorConfig) -> dict[str, Any]:
    """What a cached evaluator must match to be reused: the dataset's name, size and shape, and the config
    (which holds the heads, i.e. the targets, and every training setting)."""
    return {"dataset": train_set.name, "n_train": len(train_set), "image_shape": list(train_set.shape),
            "config": config.to_dict()}


def evaluator_for_run(
    run_dir: str | Path,
    train_set: ImageSet,
    test_set: ImageSet | None = None,
    device: str | torch.device = "cpu",
    progress: Progress = NULL_PROGRESS,
    config: EvaluatorConfig | None = None,
    shared: Callable[[], Iterable[tuple[str, Path]]] = tuple,
) -> Evaluator | None:
    """The evaluator cached in ``<run_dir>/evaluator/`` when its key (``cache_key``) matches; else the first of
    ``shared()`` ((name, folder) of evaluators trained on the very same data, such as a zoo model's; asked only
    on a miss) whose key matches, copied there; else a freshly trained one (saved there, with its test
    accuracy). None when the data has no labels and no discrete factors: there is nothing to classify, and
    callers skip the classifier-confidence score."""
    if config is None:
        heads = dataset_heads(train_set)
        if not heads:
            return None
        config = EvaluatorConfig(image_shape=train_set.shape, heads=heads)
    folder = Path(run_dir) / CACHE_DIR
    key = cache_key(train_set, config)
    if (folder / WEIGHTS).is_file() and (folder / CONFIG).is_file() and read_json(folder / CONFIG).get("key") == key:
        logger.info("reusing the evaluator in %s", folder)
        return load_evaluator(folder, device)
    for name, other in shared():
        if (other / WEIGHTS).is_file() and (other / CONFIG).is_file() and read_json(other / CONFIG).get("key") == key:
            logger.info("reusing the evaluator of %s, trained on the same data", name)
            evaluator = load_evaluator(other, device)
            save_evaluator(evaluator, folder, metadata={"key": key, "trained_for": name})
            return evaluator
    logger.info("training an evaluator for %s (heads: %s)", train_set.name, ", ".join(h.name for h in config.heads))
    evaluator = train_evaluator(train_set, test_set, config, device, progress)
    save_evaluator(evaluator, folder, metadata={"key": key})
    return evaluator


def shared_from(run_dir: str | Path) -> str | None:
    """The name of the run (a zoo model) whose evaluator ``<run_dir>/evaluator/`` reuses, None for its own."""
    path = Path(run_dir) / CACHE_DIR / CONFIG
    return read_json(path).get("trained_for") if path.is_file() else None
