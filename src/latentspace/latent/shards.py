"""A sharded codes folder: what a streaming encode writes shard by shard, and how it is read back.

    _index.json                 the plan (what is encoded, by which model, how it is cut) and the finished shards
    shard-00000.npy             format "npy": z (n, D) float32, plus beside it
    shard-00000.names.json        the n source names (a JSON list: any file name survives)
    shard-00000.labels.npy        int64 (n,) class indices, when the folder has class sub-folders
    shard-00000.factors.npy       float32 (n, F), when it has an attributes.csv
    shard-00000.parquet         format "parquet": one row per image (see latent.codes_table)

Shard k holds the images k * shard_size ... (k + 1) * shard_size - 1 of the sorted file list, less any that
could not be read, so a shard is the same whichever run wrote it. Every file is written atomically and a shard
enters the index only after all its files exist: a crash leaves at worst an unlisted shard, which the next run
writes again. The index is named with a leading "_" so that Parquet readers given the folder
(``pyarrow.dataset``, ``pandas.read_parquet``) skip it and read the shards as one table.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from latentspace.latent.codes_table import require_pyarrow, table_arrays, write_codes_parquet
from latentspace.utils.files import read_json, write_atomic, write_json

INDEX = "_index.json"
FORMAT = "latentspace.codes-shards/1"
FORMATS = ("npy", "parquet")


def shard_stem(k: int) -> str:
    return f"shard-{k:05d}"


def _save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.save would otherwise append ".npy" to the temp name
            np.save(f, array, allow_pickle=False)

    write_atomic(path, write)


def open_index(out_dir: Path, plan: dict[str, Any], header: dict[str, Any]) -> dict[str, Any]:
    """The index of ``out_dir``: the existing one when its plan is ``plan`` (a resumed encode), else a new one.

    header: what readers need besides the shards (latent_dim, class_names, factor_names, factor_values).
    An index of another plan, or a non-empty folder without one, raises ValueError: never mix two encodes.
    """
    path = out_dir / INDEX
    if path.is_file():
        index = read_json(path)
        if not isinstance(index, dict) or index.get("format") != FORMAT:
            raise ValueError(f"{path}: not a sharded codes index ({FORMAT})")
        old = index.get("plan", {})
        changed = sorted(k for k in set(plan) | set(old) if plan.get(k) != old.get(k))
        if changed:
            raise ValueError(f"{out_dir}: holds an encode with other {', '.join(changed)}; choose another --out "
                             "or delete it to start again")
        return index
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ValueError(f"{out_dir}: not an empty folder and has no {INDEX}; choose a new or empty folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    index = {"format": FORMAT, "plan": plan, **header, "shards": []}
    write_json(path, index)
    return index


def done_shards(out_dir: Path, index: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The index's finished shards (by number) whose files are all still there."""
    return {s["shard"]: s for s in index["shards"] if all((out_dir / f).is_file() for f in s["files"])}


def write_shard(
    out_dir: Path, k: int, fmt: str, z: np.ndarray, names: list[str], labels: np.ndarray | None,
    factors: np.ndarray | None, header: dict[str, Any],
) -> list[str]:
    """Write shard ``k`` (codes z (n, D) and its per-image columns) in ``fmt``; returns its file names."""
    stem = shard_stem(k)
    if fmt == "parquet":
        write_codes_parquet(out_dir / f"{stem}.parquet", z, names=names, labels=labels,
                            class_names=header["class_names"], factors=factors,
                            factor_names=header["factor_names"], factor_values=header["factor_values"])
        return [f"{stem}.parquet"]
    if fmt != "npy":
        raise ValueError(f"shard format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    files = [f"{stem}.npy", f"{stem}.names.json"]
    _save_npy(out_dir / files[0], np.ascontiguousarray(z, dtype=np.float32))
    write_json(out_dir / files[1], list(names))
    if labels is not None:
        files.append(f"{stem}.labels.npy")
        _save_npy(out_dir / files[-1], np.asarray(labels, dtype=np.int64))
    if factors is not None:
        files.append(f"{stem}.factors.npy")
        _save_npy(out_dir / files[-1], np.asarray(factors, dtype=np.float32))
    return files


def record_shard(out_dir: Path, index: dict[str, Any], entry: dict[str, Any]) -> None:
    """Add a finished shard to the index (replacing an older entry of the same number) and write it atomically."""
    index["shards"] = sorted([s for s in index["shards"] if s["shard"] != entry["shard"]] + [entry],
                             key=lambda s: s["shard"])
    write_json(out_dir / INDEX, index)


def _read_npy_shard(out_dir: Path, entry: dict[str, Any]) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for name in entry["files"]:
        path = out_dir / name
        if name.endswith(".names.json"):
            arrays["names"] = np.array(read_json(path), dtype=str)
        elif name.endswith(".labels.npy"):
            arrays["labels"] = np.load(path, allow_pickle=False)
        elif name.endswith(".factors.npy"):
            arrays["factors"] = np.load(path, allow_pickle=False)
        else:
            arrays["z"] = np.load(path, allow_pickle=False)
    return arrays


def read_shards(out_dir: str | Path) -> dict[str, np.ndarray]:
    """A finished sharded encode as one set of arrays, named as in the .npz codes file: ``z`` (N, D) float32,
    ``names`` (N,), and ``labels`` + ``class_names`` / ``factors`` + ``factor_names`` when present."""
    out_dir = Path(out_dir)
    index = read_json(out_dir / INDEX)
    plan = index["plan"]
    expected = -(-plan["n_files"] // plan["shard_size"])
    done = done_shards(out_dir, index)
    if len(done) != expected:
        raise ValueError(f"{out_dir}: {len(done)} of {expected} shards are finished; run the same "
                         "`latentspace encode` again to finish it")
    if plan["format"] == "parquet":
        require_pyarrow()
        import pyarrow.parquet as pq

        paths = [out_dir / done[k]["files"][0] for k in range(expected)]
        parts = [table_arrays(pq.read_table(str(p)), str(p)) for p in paths]
    else:
        parts = [_read_npy_shard(out_dir, done[k]) for k in range(expected)]
    if not parts:
        raise ValueError(f"{out_dir}: the encode has no shards (no images to encode)")
    d = int(index["latent_dim"])
    out = {key: np.concatenate([p[key] for p in parts]) for key in ("z", "names", "labels", "factors")
           if key in parts[0]}
    out["z"] = out["z"].reshape(-1, d)
    if "labels" in out:
        out["class_names"] = np.array(index["class_names"], dtype=str)
    if "factors" in out:
        out["factors"] = out["factors"].reshape(-1, len(index["factor_names"]))
        out["factor_names"] = np.array(index["factor_names"], dtype=str)
    return out


def check_format(fmt: str) -> None:
    """Fail before any work when ``fmt`` is unknown or needs a missing extra (parquet)."""
    if fmt not in FORMATS:
        raise ValueError(f"shard format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "parquet":
        require_pyarrow()
