"""`latentspace traverse`: sweep each latent axis around an image's code, and say which axis holds which factor."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from latentspace import api
from latentspace.cli.console import RichProgress
from latentspace.cli.encode import DeviceOpt, RunArg
from latentspace.metrics.disentanglement import AxisFactorTable
from latentspace.utils.device import pick_device
from latentspace.viz.figures import axis_labels, traversal_figure
from latentspace.viz.grid import save_image

out = Console()


def matrix_table(table: AxisFactorTable) -> Table:
    """Latent axis <-> factor: normalised MI of every axis with every factor, and the factor each axis holds."""
    t = Table(title=f"latent axis <-> factor: normalised mutual information (holds: >= {table.threshold:g}; weak: "
                    "clearly above the same estimate on shuffled factors)")
    for i, name in enumerate(table.columns):
        t.add_column(name, justify="right" if 0 < i < len(table.columns) - 1 else "left")
    for row in table.rows():
        t.add_row(*row)
    return t


def best_axis_table(table: AxisFactorTable) -> Table:
    t = Table(title=f"best axis per factor (MIG {table.mig:.3f})")
    for name in ("factor", "best axis", "normalised MI"):
        t.add_column(name, justify="left" if name == "factor" else "right")
    for name, axis, score in zip(table.factor_names, table.best_axis, table.best_score):
        t.add_row(name, f"z{axis}", f"{score:.3f}")
    return t


def traverse_command(
    run_dir: RunArg,
    image: Annotated[str, typer.Option("--image", help="A test-split index or an image file.")] = "0",
    span: Annotated[float, typer.Option("--range", help="Sweep from -RANGE to +RANGE prior stds around the "
                                        "image's code.")] = 2.5,
    steps: Annotated[int, typer.Option("--steps", help="Values per axis.")] = 9,
    out_path: Annotated[Path, typer.Option("--out", help="Grid image to write.")] = Path("traverse.png"),
    device: DeviceOpt = "auto",
) -> None:
    """Write the traversal grid (a row per latent axis) and print which axis holds which factor."""
    if steps < 2 or not span > 0:
        raise typer.BadParameter(f"need --steps >= 2 and --range > 0, got {steps} and {span}", param_hint="--steps")
    values = np.linspace(-span, span, steps)
    result = api.traverse(run_dir, api.image_ref(image), values, device=pick_device(device), progress=RichProgress())
    labels = axis_labels(result.table, len(result.z0))
    figure = traversal_figure(result.grid, labels, result.values, title=f"traversal around {result.source}")
    save_image(figure, out_path)
    if result.table is not None:
        out.print(matrix_table(result.table))
        out.print(best_axis_table(result.table))
    out.print(f"wrote {out_path}: {result.grid.shape[0]} axes x {steps} values, {figure.width}x{figure.height} px",
              markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("traverse")(traverse_command)
