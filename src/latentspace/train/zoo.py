"""The zoo: pretrained run folders shipped inside the package, named ``zoo:NAME`` wherever a run is taken.

The folders live in ``latentspace/pretrained/<name>/`` with one index, ``pretrained/zoo.json``: each model's
card (the figures its ``MODEL_CARD.md`` states) and the SHA-256 of every file. The installed package is never
written: the first use of ``zoo:NAME`` copies the folder, checking every checksum, into the user cache
(``<cache>/zoo/<name>-<digest>/``), and every verb works on that copy, so caches a verb writes beside the run
(codes, maps, priors, directions) land there. A new release with other weights gets a new digest and so a
fresh copy. ``zoo/build.py`` in the repository rebuilds the folders and the index from their recipes.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from latentspace.utils.files import cache_root

PREFIX = "zoo:"
PACKAGE_DIR = Path(__file__).resolve().parent.parent / "pretrained"
INDEX = "zoo.json"
INDEX_FORMAT = "latentspace.zoo/1"
CARD = "MODEL_CARD.md"


@dataclass(frozen=True)
class ZooModel:
    """One shipped run: its name, card figures (from zoo.json) and file checksums (relative path -> sha256)."""

    name: str
    card: dict[str, Any]
    files: dict[str, str]

    @property
    def source(self) -> Path:
        return PACKAGE_DIR / self.name

    @property
    def digest(self) -> str:
        """One checksum over every file's: names the cached copy, so new weights never reuse an old copy."""
        joined = "\n".join(f"{path} {sha}" for path, sha in sorted(self.files.items()))
        return hashlib.sha256(joined.encode()).hexdigest()[:16]

    @property
    def size_bytes(self) -> int:
        return sum((self.source / path).stat().st_size for path in self.files)

    def summary(self) -> str:
        """The one-line card: data, objective, latent size, NLL or PSNR, FD and training CPU-minutes."""
        c = self.card
        quality = [f"NLL {c['nll']:.1f} nats" if c.get("nll") is not None else None,
                   f"PSNR {c['psnr']:.1f} dB" if c.get("psnr") is not None else None,
                   f"FD {c['fd']:.0f}" if c.get("fd") is not None else None]
        parts = [c.get("data", "?"), f"{c.get('objective', '?')} {c.get('latent_dim', '?')}-d",
                 *[q for q in quality if q], f"{c.get('cpu_minutes', 0):.1f} CPU-min"]
        return ", ".join(parts)


@cache
def zoo_models() -> dict[str, ZooModel]:
    """The registry: every shipped model by name (empty when the package ships none). The CLI's `zoo` list,
    the ``zoo:`` resolution and its error message all read this one table."""
    path = PACKAGE_DIR / INDEX
    if not path.is_file():
        return {}
    index = json.loads(path.read_text(encoding="utf-8"))
    if index.get("format") != INDEX_FORMAT:
        raise ValueError(f"{path}: not a zoo index (format {index.get('format')!r}, expected {INDEX_FORMAT!r})")
    return {name: ZooModel(name, entry["card"], entry["files"]) for name, entry in sorted(index["models"].items())}


def is_zoo_ref(ref: str | os.PathLike) -> bool:
    return os.fspath(ref).startswith(PREFIX)


def zoo_model(name: str) -> ZooModel:
    """The model called ``name`` (without the prefix); an unknown name is a ValueError listing the known ones."""
    models = zoo_models()
    if name not in models:
        known = ", ".join(PREFIX + n for n in models) or "none (this install ships no pretrained models)"
        raise ValueError(f"{PREFIX}{name}: no such pretrained model; known: {known}")
    return models[name]


def resolve_run(ref: str | os.PathLike) -> Path:
    """The folder a run reference names: ``zoo:NAME`` -> its checked copy in the user cache, else the path."""
    if not is_zoo_ref(ref):
        return Path(ref).expanduser()
    return cached_copy(zoo_model(os.fspath(ref)[len(PREFIX):]))


def zoo_name_of(path: str | os.PathLike) -> str | None:
    """The zoo name of a run folder that is a zoo model's cached copy, else None (a run the user trained)."""
    path = Path(path).resolve()
    for model in zoo_models().values():
        if path == (zoo_cache_dir() / f"{model.name}-{model.digest}").resolve():
            return model.name
    return None


def evaluators_for(data_info: dict[str, Any]) -> list[tuple[str, Path]]:
    """(zoo:NAME, folder) of the zoo's evaluators trained on the data that ``data_info`` (a run's config
    ``data``) describes: the same dataset and generator settings, wherever it was read from. A run trained on
    that data reuses one instead of training its own (15 s of a 64 px faces demo); the folder is in the model's
    checked copy."""
    wanted = {k: v for k, v in data_info.items() if k != "data_dir"}
    found = []
    for model in zoo_models().values():
        config = model.source / "config.json"
        data = json.loads(config.read_text(encoding="utf-8")).get("data", {}) if config.is_file() else {}
        if {k: v for k, v in data.items() if k != "data_dir"} == wanted and "evaluator/config.json" in model.files:
            found.append((PREFIX + model.name, cached_copy(model) / "evaluator"))
    return found


def zoo_cache_dir() -> Path:
    return cache_root() / "zoo"


def cached_copy(model: ZooModel) -> Path:
    """The model's folder in the user cache, copied (and every checksum checked) on first use."""
    target = zoo_cache_dir() / f"{model.name}-{model.digest}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{model.name}-", dir=target.parent))
    try:
        for rel, sha in model.files.items():
            _copy_checked(model.source / rel, staging / rel, sha)
        try:
            os.rename(staging, target)  # atomic: a reader sees no copy or a whole one
        except OSError:
            if not target.is_dir():  # another process finished the same copy first: theirs serves
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _copy_checked(src: Path, dst: Path, sha: str) -> None:
    if not src.is_file():
        raise ValueError(f"{src}: missing from the installed zoo; reinstall latentspace")
    data = src.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha:
        raise ValueError(f"{src}: checksum mismatch: the installed zoo file is damaged; reinstall latentspace")
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
