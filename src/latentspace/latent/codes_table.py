"""Latent codes as a table: one row per image, written as Parquet (beside the .npz codes file).

Columns, in order, each present only when the source has it:

    name            string     the image's source name (a folder's relative path, or the file given)
    label           int64      class index; the class names are in the schema metadata
    factor_<name>   float32    one column per factor (discrete factors hold the value index)
    z               fixed_size_list<float32>[D]   the code

``z`` is one fixed-size list column rather than D scalar columns: a 512-value code stays one column, and it reads
back as one (N, D) array without copying. The ``factor_`` prefix keeps a factor called ``name`` or ``z`` apart
from the other columns and lets ``df.filter(like="factor_")`` pick all of them. The schema metadata key
``latentspace`` holds JSON: format, latent_dim, class_names, factor_names, factor_values.

pyarrow is imported only when called: it is the optional ``parquet`` extra.
"""
from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from latentspace.data import ImageSet
from latentspace.utils.files import write_atomic

PARQUET_EXTRA = "Parquet output needs the parquet extra: pip install 'latentspace[parquet]'"
FORMAT = "latentspace.codes/1"
META_KEY = b"latentspace"
FACTOR_PREFIX = "factor_"


def require_pyarrow() -> None:
    """Raise the one-line install hint unless pyarrow can be imported."""
    if importlib.util.find_spec("pyarrow") is None:
        raise ValueError(PARQUET_EXTRA)


def columns_of(images: ImageSet) -> dict[str, Any]:
    """The per-image columns of an ImageSet, as keyword arguments for ``codes_table`` / ``write_codes_parquet``."""
    return {"names": images.names, "labels": images.labels, "class_names": images.class_names,
            "factors": images.factors, "factor_names": images.factor_names, "factor_values": images.factor_values}


def codes_table(
    z: np.ndarray,
    names: Sequence[str] | None = None,
    labels: np.ndarray | None = None,
    class_names: Sequence[str] = (),
    factors: np.ndarray | None = None,
    factor_names: Sequence[str] = (),
    factor_values: dict[str, Sequence[str]] | None = None,
):
    """A pyarrow Table of codes z (N, D) and the per-image columns given (see module docstring)."""
    require_pyarrow()
    import pyarrow as pa

    z = np.ascontiguousarray(z, dtype=np.float32)
    if z.ndim != 2:
        raise ValueError(f"codes must be (N, D), got shape {z.shape}")
    n, d = z.shape
    for what, column in (("names", names), ("labels", labels), ("factors", factors)):
        if column is not None and len(column) != n:
            raise ValueError(f"codes table: {what} has {len(column)} rows, z has {n}")
    if factors is not None and np.shape(factors)[1:] != (len(factor_names),):
        raise ValueError(f"codes table: factors are {np.shape(factors)}, expected ({n}, {len(factor_names)}) "
                         "for the factor names given")
    columns: dict[str, Any] = {}
    if names is not None:
        columns["name"] = pa.array(list(names), type=pa.string())
    if labels is not None:
        columns["label"] = pa.array(np.asarray(labels, dtype=np.int64))
    if factors is not None:
        for k, fname in enumerate(factor_names):
            columns[FACTOR_PREFIX + fname] = pa.array(np.asarray(factors[:, k], dtype=np.float32))
    columns["z"] = pa.FixedSizeListArray.from_arrays(pa.array(z.reshape(-1)), d)
    meta = {"format": FORMAT, "latent_dim": d, "class_names": list(class_names),
            "factor_names": list(factor_names) if factors is not None else [],
            "factor_values": {k: list(v) for k, v in (factor_values or {}).items()} if factors is not None else {}}
    return pa.table(columns).replace_schema_metadata({META_KEY: json.dumps(meta).encode()})


def write_codes_parquet(path: str | Path, z: np.ndarray, **columns: Any) -> Path:
    """Write codes and their per-image columns (``codes_table`` arguments) as one Parquet file, atomically."""
    path = Path(path)
    if path.suffix != ".parquet":
        raise ValueError(f"{path}: a Parquet codes file must end in .parquet")
    table = codes_table(z, **columns)
    import pyarrow.parquet as pq

    return write_atomic(path, lambda tmp: pq.write_table(table, str(tmp)))


def table_arrays(table, where: str) -> dict[str, np.ndarray]:
    """The arrays of a codes table under the .npz names: ``z`` (N, D) float32 and, when present, ``names``,
    ``labels`` + ``class_names``, ``factors`` + ``factor_names``. ``where`` names the source in errors."""
    meta_bytes = (table.schema.metadata or {}).get(META_KEY)
    if meta_bytes is None or "z" not in table.column_names:
        raise ValueError(f"{where}: not a latentspace codes table (no 'z' column or no latentspace metadata); "
                         "write it with `latentspace encode --out codes.parquet`")
    meta = json.loads(meta_bytes)
    d = int(meta["latent_dim"])
    flat = table.column("z").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    arrays: dict[str, np.ndarray] = {"z": np.asarray(flat, dtype=np.float32).reshape(-1, d)}
    if "name" in table.column_names:
        arrays["names"] = np.array(table.column("name").to_pylist(), dtype=str)
    if "label" in table.column_names:
        arrays["labels"] = table.column("label").to_numpy().astype(np.int64)
        arrays["class_names"] = np.array(meta["class_names"], dtype=str)
    if meta["factor_names"]:
        arrays["factors"] = np.stack([table.column(FACTOR_PREFIX + f).to_numpy().astype(np.float32)
                                      for f in meta["factor_names"]], axis=1)
        arrays["factor_names"] = np.array(meta["factor_names"], dtype=str)
    return arrays


def read_codes_parquet(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a Parquet codes file, named as in the .npz codes file (see ``table_arrays``)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such codes file")
    require_pyarrow()
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(str(path))
    except (pa.ArrowInvalid, OSError) as e:
        raise ValueError(f"{path}: not a readable Parquet file ({e})") from None
    return table_arrays(table, str(path))
