"""Per-image attributes from an ``attributes.csv`` beside an image folder (CelebA-style tables).

The CSV is UTF-8 text (a BOM is fine) with one filename column (``filename``, ``file``, ``image`` or
``image_id``) holding each image's path relative to the folder root or just its base name, plus named
columns. Rows naming files that are not in the folder are ignored. Each other column is numeric or text:

- A column is numeric when more than half of its non-empty cells are numbers. Every cell of it must then
  be a finite number that fits a float32, or empty (missing: NaN). Anything else (``n/a``, ``?``, ``inf``,
  ``nan``, ``1e999``) is a ValueError naming the file, line, column and cell: a stray word in an ``age``
  column is almost always a typo or a missing-value marker, and dropping the column, or turning it into
  categories, would hide that. One non-finite value would make every mean and distance over the column
  nan or inf, so it is refused too.
- Numeric columns become factors: -1/1 (CelebA) becomes 0/1, 0/1 stays, and both are discrete factors with
  values ("no", "yes"); other numbers stay continuous float32.
- Text columns (at most half numbers) are ignored.

Bytes that are not UTF-8, a cell over ``csv.field_size_limit()`` characters (128 kB), a row with a
different number of cells than the header, a file over 256 MiB or one that is not a regular file (a FIFO
would block): a one-line ValueError naming the file (and line).
"""
from __future__ import annotations

import csv
import io
import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from latentspace.data.scan import NOT_REGULAR, open_regular

logger = logging.getLogger(__name__)

FILENAME_COLUMNS = ("filename", "file", "image", "image_id")
BINARY_VALUES = ("no", "yes")
MISSING = "leave the cell empty for a missing value"
MAX_CSV_BYTES = 1 << 28  # read whole: CelebA's 200k-row table is 26 MB
NOT_A_NUMBER = "not a number"
_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
_NON_FINITE = re.compile(r"^\s*[-+]?(inf|infinity|nan)\s*$", re.IGNORECASE)
_FLOAT32_MAX = float(np.finfo(np.float32).max)


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


def _records(path: Path) -> list[tuple[int, list[str]]]:
    """(first line, cells) of every non-blank record of a UTF-8 CSV file."""
    fp = open_regular(path)
    if fp is None:
        raise ValueError(f"{path}: {NOT_REGULAR}; expected a CSV table")
    with fp:
        data = fp.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        raise ValueError(f"{path}: over {MAX_CSV_BYTES >> 20} MiB; an attributes table is expected to be smaller")
    try:
        text = data.decode("utf-8-sig")  # the whole file at once, so an error's position is exact
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ValueError(f"{path}: line {line}: not UTF-8 text (byte 0x{data[e.start]:02x}); "
                         "save the table as UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    out, line = [], 1
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                out.append((line, row))
            line = reader.line_num + 1
    except csv.Error as e:
        if "field larger than field limit" in str(e):
            raise ValueError(f"{path}: line {line}: a cell is over {csv.field_size_limit()} characters; "
                             "is this a CSV table (an unclosed quote?)") from None
        raise ValueError(f"{path}: line {line}: not valid CSV ({e})") from None
    return out


def _read_table(path: Path) -> tuple[list[str], list[int], list[list[str]]]:
    """(header, line of each row, rows) of a CSV file; rows must have as many cells as the header."""
    records = _records(path)
    if not records:
        raise ValueError(f"{path}: empty file, expected a header row with a filename column")
    header = [h.strip() for h in records[0][1]]
    counts = Counter(header)
    dupes = [h for h, c in counts.items() if c > 1]
    if dupes:
        raise ValueError(f"{path}: column {dupes[0]!r} appears {counts[dupes[0]]} times")
    for line, row in records[1:]:
        if len(row) != len(header):
            raise ValueError(f"{path}: line {line} has {len(row)} cells, the header has {len(header)}")
    return header, [line for line, _ in records[1:]], [row for _, row in records[1:]]


def _key_column(path: Path, header: Sequence[str]) -> int:
    lowered = [h.lower() for h in header]
    for name in FILENAME_COLUMNS:
        if name in lowered:
            return lowered.index(name)
    raise ValueError(f"{path}: no filename column; expected one of {', '.join(FILENAME_COLUMNS)}, got {list(header)}")


def _cell_value(cell: str) -> float | str:
    """The number in a cell (NaN when empty), or why it is not a usable one ("not a number", ...)."""
    if not cell.strip():
        return math.nan
    if _NUMBER.match(cell):
        value = float(cell)
        return value if abs(value) <= _FLOAT32_MAX else "not a finite 32-bit number"
    return "not a finite number" if _NON_FINITE.match(cell) else NOT_A_NUMBER


def _numeric(path: Path, name: str, cells: Sequence[str], lines: Sequence[int]) -> np.ndarray | None:
    """A column -> float64 values (empty -> NaN), or None for a text column; a numeric column with a bad
    cell is a ValueError naming it (see the module docstring for the rule)."""
    parsed = {u: _cell_value(u) for u in set(cells)}  # parse each distinct value once
    filled = [c for c in cells if c.strip()]
    numbers = sum(isinstance(parsed[c], float) for c in filled)
    if not filled or 2 * sum(parsed[c] != NOT_A_NUMBER for c in filled) <= len(filled):
        return None
    for cell, line in zip(cells, lines):
        if isinstance(parsed[cell], str):
            raise ValueError(f"{path}: line {line}, column {name!r}: {cell[:40]!r} is {parsed[cell]} ({numbers} "
                             f"of the column's {len(filled)} filled cells are numbers; {MISSING})")
    return np.array([parsed[c] for c in cells], dtype=np.float64)


def _as_factor(values: np.ndarray) -> tuple[np.ndarray, bool]:
    """(column, is_binary): -1/1 -> 0/1, 0/1 unchanged; anything else stays continuous."""
    seen = set(np.unique(values[~np.isnan(values)]).tolist())
    if seen <= {-1.0, 1.0} and -1.0 in seen:
        return np.where(np.isnan(values), values, (values + 1.0) / 2.0), True
    return values, bool(seen) and seen <= {0.0, 1.0}


def _match_rows(path: Path, keys: Sequence[str], lines: Sequence[int], files: Sequence[str]) -> np.ndarray:
    """Row index per file (-1 where no row names it), matching by relative path, then by base name."""
    by_key: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key in by_key:
            raise ValueError(f"{path}: file {key!r} is listed twice (lines {lines[by_key[key]]} and {lines[i]})")
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
    """Read ``path`` and align it with ``files`` (relative POSIX paths under the folder root).

    Bad content is a ValueError naming the file (and line, column, cell where there is one); OSError only
    when the file cannot be opened.
    """
    path = Path(path)
    header, lines, table = _read_table(path)
    key_col = _key_column(path, header)
    rows = _match_rows(path, [_normalise_key(r[key_col]) for r in table], lines, files)
    names, columns, values = [], [], {}
    for c, name in enumerate(header):
        if c == key_col:
            continue
        parsed = _numeric(path, name, [r[c] for r in table], lines)
        if parsed is None or np.isnan(parsed).all():
            logger.info("%s: column %r is not numeric; ignored", path, name)
            continue
        if not name:
            raise ValueError(f"{path}: column {c + 1} holds numbers but has no name; name it in the header")
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
