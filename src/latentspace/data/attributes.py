"""Per-image attributes from an ``attributes.csv`` beside an image folder (CelebA-style tables).

The CSV has one filename column (``filename``, ``file``, ``image`` or ``image_id``) holding each
image's path relative to the folder root or just its base name, plus named columns. Numeric columns
become factors: -1/1 (CelebA) becomes 0/1, 0/1 stays, and both are discrete factors with values
("no", "yes"); other numbers stay continuous floats (an empty cell is NaN). Text columns are ignored.
Rows naming files that are not in the folder are ignored.
"""
from __future__ import annotations

import csv
import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

logger = logging.getLogger(__name__)

FILENAME_COLUMNS = ("filename", "file", "image", "image_id")
BINARY_VALUES = ("no", "yes")
_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$|^\s*$|^\s*nan\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Attributes:
    """Factors for the images of a folder, in the order of the file list they were matched against.

    factors: (N, F) float32, NaN rows where ``has_row`` is False. has_row: (N,) bool.
    """

    factors: np.ndarray
    factor_names: tuple[str, ...]
    factor_values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    has_row: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


def _normalise_key(key: str) -> str:
    key = key.strip().replace("\\", "/")
    return key[2:] if key.startswith("./") else key


def _read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a CSV file; rows must have as many cells as the header."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [r for r in csv.reader(f) if any(cell.strip() for cell in r)]
    if not rows:
        raise ValueError(f"{path}: empty file, expected a header row with a filename column")
    header = [h.strip() for h in rows[0]]
    dupes = [h for h, c in Counter(header).items() if c > 1]
    if dupes:
        raise ValueError(f"{path}: column {dupes[0]!r} appears {Counter(header)[dupes[0]]} times")
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"{path}: row {line} has {len(row)} cells, the header has {len(header)}")
    return header, rows[1:]


def _key_column(path: Path, header: Sequence[str]) -> int:
    lowered = [h.lower() for h in header]
    for name in FILENAME_COLUMNS:
        if name in lowered:
            return lowered.index(name)
    raise ValueError(f"{path}: no filename column; expected one of {', '.join(FILENAME_COLUMNS)}, got {list(header)}")


def _numeric(cells: np.ndarray) -> np.ndarray | None:
    """A text column -> float64 values (empty -> NaN), or None when some cell is not a number."""
    uniq, inverse = np.unique(cells, return_inverse=True)  # parse each distinct value once
    if not all(_NUMBER.match(u) for u in uniq):
        return None
    values = np.array([float(u) if u.strip() else math.nan for u in uniq], dtype=np.float64)
    return values[inverse.reshape(-1)]


def _as_factor(values: np.ndarray) -> tuple[np.ndarray, bool]:
    """(column, is_binary): -1/1 -> 0/1, 0/1 unchanged; anything else stays continuous."""
    seen = set(np.unique(values[~np.isnan(values)]).tolist())
    if seen <= {-1.0, 1.0} and -1.0 in seen:
        return np.where(np.isnan(values), values, (values + 1.0) / 2.0), True
    return values, bool(seen) and seen <= {0.0, 1.0}


def _match_rows(path: Path, keys: Sequence[str], files: Sequence[str]) -> np.ndarray:
    """Row index per file (-1 where no row names it), matching by relative path, then by base name."""
    by_key: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key in by_key:
            raise ValueError(f"{path}: file {key!r} is listed twice (rows {by_key[key] + 2} and {i + 2})")
        by_key[key] = i
    base_names = [PurePosixPath(f).name for f in files]
    base_count = Counter(base_names)
    rows = np.full(len(files), -1, dtype=np.int64)
    for j, (rel, base) in enumerate(zip(files, base_names)):
        if rel in by_key:
            rows[j] = by_key[rel]
        elif base in by_key:
            if base_count[base] > 1:
                clash = [f for f, b in zip(files, base_names) if b == base][:3]
                raise ValueError(
                    f"{path}: row {base!r} matches {base_count[base]} images ({', '.join(clash)}); "
                    "write paths relative to the folder in the filename column"
                )
            rows[j] = by_key[base]
    return rows


def read_attributes(path: str | Path, files: Sequence[str]) -> Attributes:
    """Read ``path`` and align it with ``files`` (relative POSIX paths under the folder root)."""
    path = Path(path)
    header, table = _read_table(path)
    key_col = _key_column(path, header)
    cells = np.array(table, dtype=str).reshape(len(table), len(header))
    rows = _match_rows(path, [_normalise_key(k) for k in cells[:, key_col]], files)
    names, columns, values = [], [], {}
    for c, name in enumerate(header):
        if c == key_col:
            continue
        parsed = _numeric(cells[:, c])
        if parsed is None or np.isnan(parsed).all():
            logger.info("%s: column %r is not numeric; ignored", path, name)
            continue
        column, binary = _as_factor(parsed)
        names.append(name)
        columns.append(column)
        if binary:
            values[name] = BINARY_VALUES
    table_factors = np.stack(columns, axis=1) if columns else np.zeros((len(table), 0))
    factors = np.full((len(files), len(names)), np.nan, dtype=np.float32)
    has_row = rows >= 0
    factors[has_row] = table_factors[rows[has_row]]
    return Attributes(factors=factors, factor_names=tuple(names), factor_values=values, has_row=has_row)
