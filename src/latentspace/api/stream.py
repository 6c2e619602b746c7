"""Encode an image folder of any size into a sharded codes folder, with bounded memory, resumable.

The folder is listed once (``data.folder.scan_folder``: sorted, train/ before test/, labels from class
folders, factors from attributes.csv) and cut into shards of ``shard_size`` files. Each shard is decoded
``batch_size`` images at a time with the folder loader's own ``decode_image`` (same scaling and cropping, same
channel conversion), encoded under inference mode, and only its codes are kept until the shard is written
(latent.shards). So at most ``batch_size`` decoded images and ``shard_size`` codes are in memory at once,
whatever the folder's size, and no folder cache is built.

A finished shard is recorded in the output's index; running the same encode again skips finished shards, and
since shards are fixed by the sorted file list (and posterior samples by a generator seeded per shard) a
resumed encode writes exactly the files an uninterrupted one would.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from latentspace.api.common import Device, model_key, open_model
from latentspace.data.attributes import read_attributes
from latentspace.data.folder_cache import decode_or_reason
from latentspace.data.folder import ATTRIBUTES_FILE, NO_ROW
from latentspace.data.resize import convert_channels
from latentspace.data.scan import FolderScan, scan_folder
from latentspace.latent.codes import encode_images, model_device
from latentspace.latent.shards import check_format, done_shards, open_index, record_shard, write_shard
from latentspace.utils.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)

DEFAULT_SHARD_SIZE = 10_000


@dataclass(frozen=True)
class StreamResult:
    """What ``encode_folder`` did: ``n_found`` image files, ``n_files`` planned (after attributes.csv and n),
    ``n_encoded`` codes of ``latent_dim`` values in ``n_shards`` shards, of which ``n_resumed`` were already
    finished by an earlier run; ``skipped`` (name, reason) for every file not encoded."""

    out_dir: Path
    n_found: int
    n_files: int
    n_encoded: int
    latent_dim: int
    n_shards: int
    n_resumed: int
    skipped: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Plan:
    """The files to encode, in order, with their labels and factors (None where the folder has none)."""

    scan: FolderScan
    files: tuple[str, ...]
    labels: np.ndarray | None
    factors: np.ndarray | None
    factor_names: tuple[str, ...]
    factor_values: dict[str, tuple[str, ...]]
    unmatched: tuple[str, ...]  # files without a row in attributes.csv: not encoded, as the folder loader does


def plan_folder(folder: str | Path, n: int | None = None) -> _Plan:
    """List ``folder`` and align labels and attributes.csv factors with its files; keep the first ``n``."""
    scan = scan_folder(folder)
    keep = np.ones(len(scan.files), dtype=bool)
    factors, names, values = None, (), {}
    csv_path = scan.root / ATTRIBUTES_FILE
    if csv_path.is_file():
        attrs = read_attributes(csv_path, scan.files)
        keep = attrs.has_row
        if not keep.any():
            raise ValueError(f"{csv_path}: no row names any of the {len(scan.files)} images (e.g. {scan.files[0]})")
        if attrs.factor_names:
            factors, names, values = attrs.factors, attrs.factor_names, dict(attrs.factor_values)
    rows = np.flatnonzero(keep)[:n]
    return _Plan(
        scan=scan, files=tuple(scan.files[i] for i in rows),
        labels=None if scan.labels is None else scan.labels[rows],
        factors=None if factors is None else factors[rows], factor_names=tuple(names), factor_values=values,
        unmatched=tuple(f for f, k in zip(scan.files, keep) if not k),
    )


def _files_digest(plan: _Plan) -> str:
    """Hash of the planned files with their sizes and mtimes: a changed folder is a different encode."""
    stats = dict(zip(plan.scan.files, plan.scan.stats))
    csv_path = plan.scan.root / ATTRIBUTES_FILE
    csv_stat = [csv_path.stat().st_size, csv_path.stat().st_mtime_ns] if csv_path.is_file() else None
    blob = json.dumps([[f, stats[f]] for f in plan.files] + [csv_stat])
    return hashlib.sha256(blob.encode()).hexdigest()


def decode_batch(
    pool: ThreadPoolExecutor, root: Path, files: tuple[str, ...], image_shape: tuple[int, int, int],
) -> tuple[np.ndarray, list[int], list[tuple[str, str]]]:
    """Decode ``files`` (one batch) in parallel -> uint8 (k, C, S, S) of the readable ones, their positions in
    ``files``, and (name, reason) for the others."""
    c, size, _ = image_shape
    results = list(pool.map(lambda f: decode_or_reason(root / f, size), files))
    ok = [i for i, r in enumerate(results) if not isinstance(r, str)]
    skipped = [(files[i], r) for i, r in enumerate(results) if isinstance(r, str)]
    pixels = np.stack([results[i] for i in ok]) if ok else np.empty((0, 3, size, size), dtype=np.uint8)
    return convert_channels(pixels, c), ok, skipped


def _shard_generator(model: torch.nn.Module, seed: int, shard: int) -> torch.Generator:
    """A generator for shard ``shard`` alone, so that shards can be (re)written in any order."""
    state = int(np.random.SeedSequence([seed, shard]).generate_state(1, dtype=np.uint64)[0] >> 1)
    return torch.Generator(device=model_device(model)).manual_seed(state)


def encode_folder(
    run_dir: str | Path,
    folder: str | Path,
    out_dir: str | Path,
    shard_size: int = DEFAULT_SHARD_SIZE,
    fmt: str = "npy",
    batch_size: int = 1000,
    sample: bool = False,
    seed: int = 0,
    n: int | None = None,
    device: Device = "cpu",
    progress: Progress = NULL_PROGRESS,
    workers: int | None = None,
) -> StreamResult:
    """Encode every image of ``folder`` (the first ``n``) with the run's model into shards under ``out_dir``.

    Posterior means by default; ``sample=True`` draws one posterior sample per image (seeded per shard).
    fmt: "npy" or "parquet" (see latent.shards). A re-run with the same arguments continues an interrupted
    encode; an ``out_dir`` holding another encode raises ValueError.
    """
    if shard_size < 1 or batch_size < 1:
        raise ValueError(f"shard_size and batch_size must be >= 1, got {shard_size} and {batch_size}")
    if n is not None and n < 1:
        raise ValueError(f"n must be a positive number of images, got {n}")
    check_format(fmt)
    run, model = open_model(run_dir, device)
    shape = tuple(int(s) for s in model.config.image_shape)
    plan = plan_folder(folder, n)
    out_dir = Path(out_dir)
    key = {"source": str(plan.scan.root), "files_sha256": _files_digest(plan), "n_files": len(plan.files),
           "shard_size": shard_size, "format": fmt, "image_shape": list(shape), "sample": sample,
           "seed": seed if sample else None, "run": str(run.path.resolve()), **model_key(run)}
    header = {"latent_dim": int(model.config.latent_dim), "class_names": list(plan.scan.class_names),
              "factor_names": list(plan.factor_names),
              "factor_values": {k: list(v) for k, v in plan.factor_values.items()}}
    index = open_index(out_dir, key, header)
    done = done_shards(out_dir, index)
    n_shards = -(-len(plan.files) // shard_size)
    progress.start(len(plan.files), "encode")
    try:
        with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # a bomb is skipped, as in the loader
            for k in range(n_shards):
                lo, hi = k * shard_size, min((k + 1) * shard_size, len(plan.files))
                if k in done:
                    progress.advance(hi - lo)
                    continue
                _encode_shard(model, plan, out_dir, index, header, k, lo, hi, fmt, batch_size,
                              _shard_generator(model, seed, k) if sample else None, pool, progress)
    finally:
        progress.close()
    resumed = len([k for k in done if k < n_shards])
    entries = done_shards(out_dir, index)
    skipped = tuple(plan.scan.skipped) + tuple((f, NO_ROW) for f in plan.unmatched)
    skipped += tuple(tuple(s) for k in sorted(entries) for s in entries[k]["skipped"])
    n_found = len(plan.scan.files) + len(plan.scan.skipped)
    n_encoded = sum(e["rows"] for e in entries.values())
    return StreamResult(out_dir, n_found, len(plan.files), n_encoded, header["latent_dim"], n_shards, resumed, skipped)


def _encode_shard(
    model, plan: _Plan, out_dir: Path, index: dict, header: dict, k: int, lo: int, hi: int, fmt: str,
    batch_size: int, generator: torch.Generator | None, pool: ThreadPoolExecutor, progress: Progress,
) -> None:
    """Decode and encode files lo..hi-1 batch by batch, keeping only codes, then write and record shard k."""
    codes, rows, skipped = [], [], []
    shape = tuple(int(s) for s in model.config.image_shape)
    for start in range(lo, hi, batch_size):
        files = plan.files[start:min(start + batch_size, hi)]
        pixels, ok, bad = decode_batch(pool, plan.scan.root, files, shape)
        codes.append(encode_images(model, pixels, batch_size=batch_size, sample=generator is not None,
                                   generator=generator))
        rows += [start + i for i in ok]
        skipped += bad
        progress.advance(len(files))
    rows_a = np.array(rows, dtype=np.int64)
    files = write_shard(out_dir, k, fmt, np.concatenate(codes), [plan.files[i] for i in rows],
                        None if plan.labels is None else plan.labels[rows_a],
                        None if plan.factors is None else plan.factors[rows_a], header)
    record_shard(out_dir, index, {"shard": k, "files": files, "rows": len(rows), "n_files": hi - lo,
                                  "skipped": [list(s) for s in skipped]})
    log.info("%s: shard %d written (%d codes, %d skipped)", out_dir, k, len(rows), len(skipped))
