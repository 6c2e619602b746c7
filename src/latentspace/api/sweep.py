"""A sweep: every combination of some `train` options, times seeds, as run folders under one folder.

The plan is pure data: ``plan(grid, seeds)`` gives one ``SweepRun`` per combination and seed, named by its values
(``model=beta-vae,beta=4,seed=1``), so a sweep run again finds its own folders. ``status(run_dir)`` says what a
folder holds: nothing yet ('todo'), a run cut short ('partial': continued with ``train --resume``, which is
exact) or a finished one ('done': never trained again). The sweep's own ``sweep.json`` keeps the grid, and a
rerun with another grid under the same folder is refused rather than mixed.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentspace.train.run import is_run_folder, open_run
from latentspace.utils.files import read_json, write_json

SWEEP_FILE = "sweep.json"
FORMAT = "latentspace.sweep/1"


@dataclass(frozen=True)
class SweepRun:
    """One run of the plan: ``options`` (flag -> value, without the seed) and its ``seed``."""

    options: tuple[tuple[str, str], ...]
    seed: int

    @property
    def name(self) -> str:
        parts = [f"{flag.lstrip('-')}={_safe(value)}" for flag, value in self.options]
        return ",".join([*parts, f"seed={self.seed}"])

    @property
    def group(self) -> str:
        """The name without its seed: runs of one group differ only in the seed."""
        return ",".join(f"{flag.lstrip('-')}={_safe(value)}" for flag, value in self.options) or "all"

    def train_args(self) -> list[str]:
        return [*itertools.chain.from_iterable(self.options), "--seed", str(self.seed)]


def _safe(value: str) -> str:
    """A value as it may appear in a folder name: path separators become '_'."""
    return "".join(c if c.isalnum() or c in ".-_" else "_" for c in value)


def parse_grid(spec: dict[str, str | None]) -> dict[str, list[str]]:
    """Flag -> comma-separated values (None: not swept) -> flag -> list of values; empty items refused."""
    grid: dict[str, list[str]] = {}
    for flag, text in spec.items():
        if text is None:
            continue
        values = [v.strip() for v in str(text).split(",")]
        if not all(values):
            raise ValueError(f"{flag} {text!r}: expected comma-separated values such as 1,4,8")
        if len(set(values)) != len(values):
            raise ValueError(f"{flag} {text!r}: a value is repeated")
        grid[flag] = values
    return grid


def plan(grid: dict[str, list[str]], seeds: int, first_seed: int = 0) -> list[SweepRun]:
    """Every combination of the grid's values, once per seed, in a stable order."""
    if seeds < 1:
        raise ValueError(f"--seeds {seeds}: expected at least 1 seed")
    flags = list(grid)
    combos = itertools.product(*(grid[f] for f in flags)) if flags else [()]
    return [SweepRun(tuple(zip(flags, combo)), first_seed + s) for combo in combos for s in range(seeds)]


def status(run_dir: Path) -> str:
    """'todo', 'partial' or 'done' (every planned epoch trained and evaluated in metrics.jsonl)."""
    if not is_run_folder(run_dir):
        return "todo"
    run = open_run(run_dir)
    epochs = int(run.config.get("train", {}).get("epochs", 0))
    return "done" if epochs and len(run.metrics()) >= epochs else "partial"


def claim_folder(out: Path, grid: dict[str, list[str]], fixed: list[str], seeds: int) -> None:
    """Write ``sweep.json`` for a new sweep, or check that an existing one planned the same grid."""
    path = out / SWEEP_FILE
    spec = {"format": FORMAT, "grid": grid, "fixed": fixed, "seeds": seeds}
    if path.exists():
        saved = read_json(path)
        if {k: saved.get(k) for k in spec} != spec:
            raise ValueError(f"{path}: this folder holds a sweep of {saved.get('grid')} x {saved.get('seeds')} seeds "
                             f"(fixed {saved.get('fixed')}); give the same options to continue it, or another --out")
        return
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, spec)


def spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value) of the finite values; NaNs when there are none."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    mean = sum(finite) / len(finite)
    if len(finite) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1))


def group_rows(rows: list[dict[str, Any]], groups: list[str]) -> list[dict[str, Any]]:
    """Rows of one run each -> one row per group: numbers as 'mean ± sd' over its seeds (n seeds stated)."""
    out = []
    for group in dict.fromkeys(groups):
        members = [r for r, g in zip(rows, groups) if g == group]
        merged: dict[str, Any] = {"run": group, "seeds": len(members)}
        for key in members[0]:
            values = [m.get(key) for m in members]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values if v is not None) and any(
                    v is not None for v in values):
                mean, sd = spread([float(v) for v in values if v is not None])
                merged[key] = (mean, sd)
            elif key not in merged:
                merged[key] = values[0]
        out.append(merged)
    return out
