"""`latentspace data info|show`: what a dataset holds, and a labelled grid of some of its images."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from latentspace.cli.console import RichProgress
from latentspace.data import ImageSet, load
from latentspace.viz.grid import image_grid, save_image, text_width

data_app = typer.Typer(name="data", help="Look at a dataset: sizes, classes, factors, example images.",
                       no_args_is_help=True)
out = Console()  # results go to stdout; progress bars go to stderr

NameArg = Annotated[str, typer.Argument(help="mnist, fashion-mnist, kmnist, faces, shapes, or an image folder.")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Folder holding the IDX files (or NAME/).")]
SizeOpt = Annotated[int | None, typer.Option("--size", help="Resize images to SIZE x SIZE pixels.")]
ChannelsOpt = Annotated[int | None, typer.Option("--channels", help="1 (grey) or 3 (RGB).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for generated data, folder splits and sampling.")]
MAX_CLASS_ROWS = 50


def _load(name: str, split: str | None, data_dir: Path | None, size, channels, seed: int) -> ImageSet:
    progress = RichProgress()
    try:
        return load(name, split=split, data_dir=data_dir, size=size, channels=channels, seed=seed, progress=progress)
    finally:
        progress.close()


def _shape(ds: ImageSet) -> str:
    return "x".join(str(s) for s in ds.shape)


def split_table(sets: dict[str, ImageSet]) -> Table:
    table = Table(title=f"{next(iter(sets.values())).name}: images")
    for col in ("split", "images", "shape (C x H x W)"):
        table.add_column(col, justify="right" if col == "images" else "left")
    for split, ds in sets.items():
        table.add_row(split, str(len(ds)), _shape(ds))
    table.add_row("total", str(sum(len(ds) for ds in sets.values())), "")
    return table


def class_table(sets: dict[str, ImageSet]) -> Table:
    names = next(iter(sets.values())).class_names
    counts = {s: np.bincount(ds.labels, minlength=len(names)) for s, ds in sets.items()}
    table = Table(title=f"{len(names)} classes")
    table.add_column("class")
    for split in list(sets) + ["total"]:
        table.add_column(split, justify="right")
    for k, cname in enumerate(names[:MAX_CLASS_ROWS]):
        row = [int(counts[s][k]) for s in sets]
        table.add_row(cname, *(str(v) for v in row), str(sum(row)))
    if len(names) > MAX_CLASS_ROWS:
        table.add_row(f"... {len(names) - MAX_CLASS_ROWS} more", *[""] * (len(sets) + 1))
    return table


def factor_summary(column: np.ndarray, values: tuple[str, ...] | None) -> tuple[str, str]:
    """(kind, summary) of one factor column: value counts when discrete, min/mean/max when continuous."""
    missing = np.isnan(column)
    if values is not None:
        counts = np.bincount(column[~missing].astype(np.int64), minlength=len(values))
        return "discrete", ", ".join(f"{v} {int(c)}" for v, c in zip(values, counts))
    if missing.all():
        return "continuous", "all missing"
    lo, mean, hi = np.nanmin(column), np.nanmean(column), np.nanmax(column)
    note = f", {int(missing.sum())} missing" if missing.any() else ""
    return "continuous", f"min {lo:.4g}, mean {mean:.4g}, max {hi:.4g}{note}"


def factor_table(sets: dict[str, ImageSet]) -> Table:
    first = next(iter(sets.values()))
    table = Table(title=f"{len(first.factor_names)} factors (all splits)")
    for col in ("factor", "kind", "summary"):
        table.add_column(col)
    for k, name in enumerate(first.factor_names):
        column = np.concatenate([ds.factors[:, k] for ds in sets.values()])
        table.add_row(name, *factor_summary(column, first.factor_values.get(name)))
    return table


@data_app.command("info")
def info(name: NameArg, data_dir: DataDirOpt = None, size: SizeOpt = None, channels: ChannelsOpt = None,
         seed: SeedOpt = 0) -> None:
    """Counts per split, image shape, class counts and a summary of each factor."""
    sets = {s: _load(name, s, data_dir, size, channels, seed) for s in ("train", "test")}
    out.print(split_table(sets))
    if sets["train"].labels is not None:
        out.print(class_table(sets))
    if sets["train"].factors is not None:
        out.print(factor_table(sets))


MAX_CAPTION_LINES = 6  # continuous factors are captioned only while the caption has fewer lines than this
MAX_CAPTION_SCALE = 4  # tiles are enlarged at most this much to fit their captions


def caption(ds: ImageSet, i: int) -> str:
    """Class name, or one "factor: value" line per factor ("hair color: grey", "glasses: no", "smile: 0.42"):
    every discrete factor first, then continuous factors while the caption has fewer than MAX_CAPTION_LINES
    lines (faces: its six discrete factors; shapes: shape, scale, orientation, pos_x, pos_y)."""
    if ds.labels is not None:
        return ds.class_names[int(ds.labels[i])]
    discrete = [k for k, name in enumerate(ds.factor_names) if ds.is_discrete(name)]
    continuous = [k for k, name in enumerate(ds.factor_names) if not ds.is_discrete(name)]
    lines = []
    for k in discrete + continuous[: max(0, MAX_CAPTION_LINES - len(discrete))]:
        name, v = ds.factor_names[k], float(ds.factors[i, k])
        if np.isnan(v):
            value = "?"
        elif k in discrete:
            value = ds.factor_values[name][int(v)]
        else:
            value = f"{v:.2g}"
        lines.append(f"{name.replace('_', ' ')}: {value}")
    return "\n".join(lines)


def caption_scale(captions: list[str], width: int) -> int:
    """The smallest tile enlargement (1..MAX_CAPTION_SCALE) at which every caption line fits a tile ``width``
    px wide."""
    widest = max(text_width(c) for c in captions) + 4
    return min(MAX_CAPTION_SCALE, max(1, math.ceil(widest / width)))


@data_app.command("show")
def show(
    name: NameArg,
    n: Annotated[int, typer.Option("--n", "-n", help="How many images (a seeded random sample).")] = 64,
    out_path: Annotated[Path, typer.Option("--out", help="Image file to write (.png, .gif, .jpg).")] = Path("grid.png"),
    split: Annotated[str, typer.Option("--split", help="train, test or all.")] = "all",
    seed: SeedOpt = 0, data_dir: DataDirOpt = None, size: SizeOpt = None, channels: ChannelsOpt = None,
) -> None:
    """Write a grid of N images captioned with their class (or factors) and say where it went."""
    if split not in ("train", "test", "all"):
        raise typer.BadParameter(f"expected train, test or all, got {split!r}", param_hint="--split")
    if n <= 0:
        raise typer.BadParameter(f"expected a positive number of images, got {n}", param_hint="--n")
    ds = _load(name, None if split == "all" else split, data_dir, size, channels, seed)
    pick = np.sort(np.random.default_rng(seed).choice(len(ds), size=min(n, len(ds)), replace=False))
    shown = ds.subset(pick)
    if shown.labels is not None or shown.factors is not None:
        captions = [caption(shown, i) for i in range(len(shown))]
        grid = image_grid(shown.images, captions=captions, scale=caption_scale(captions, shown.images.shape[-1]))
    else:
        grid = image_grid(shown.images)
    save_image(grid, out_path)
    message = f"wrote {out_path}: {len(shown)} images of {ds.name} ({split}), {grid.width}x{grid.height} px"
    out.print(message, soft_wrap=True, markup=False, highlight=False)  # a path must stay copyable


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
