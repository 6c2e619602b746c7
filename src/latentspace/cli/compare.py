"""`latentspace compare`: runs side by side, one table on the terminal and one self-contained page."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from latentspace.api import sweep as sweep_api
from latentspace.api.compare import compare, row_values, table_cells
from latentspace.api.evaluate import EvaluateOptions
from latentspace.cli.evaluate import KOpt
from latentspace.cli.console import RichProgress
from latentspace.report.compare import protocol_line, write_comparison
from latentspace.utils.device import pick_device

out = Console()


def compare_command(
    runs: Annotated[list[Path], typer.Argument(help="Run folders written by `latentspace train`.")],
    out_path: Annotated[Path, typer.Option("--out", help="HTML page to write.")] = Path("compare.html"),
    k: KOpt = None,
    iw_images: Annotated[int | None, typer.Option("--iw-images", help="Test images in the IW bound.")] = None,
    binarized: Annotated[bool | None, typer.Option("--binarized/--no-binarized", help="Also the IW bound on a "
                                                   "dynamically binarised test set.")] = None,
    samples: Annotated[int | None, typer.Option("--samples", help="Images per sampler for FD, precision, recall.")] = None,
    diffusion_steps: Annotated[int | None, typer.Option("--diffusion-steps", help="Training steps of the latent "
                                                        "diffusion prior.")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
) -> None:
    """Put runs side by side: every run's cached evaluation (measured now where missing, under the protocol the
    others used), one table here and one page with the table, rate-distortion, training curves, FD against MSE,
    and reconstructions and samples of every run. Runs evaluated under different protocols are refused. With
    measurement options, every run is measured under them instead (cached evaluations that match are reused)."""
    compare_runs(runs, out_path, device, options=protocol(k, iw_images, binarized, samples, diffusion_steps))


def protocol(k, iw_images, binarized, samples, diffusion_steps) -> EvaluateOptions | None:
    """EvaluateOptions from the options given (the rest at their defaults), or None when none is given."""
    given = {name: v for name, v in dict(iw_k=k, iw_n=iw_images, binarized=binarized, samples=samples,
                                         diffusion_steps=diffusion_steps).items() if v is not None}
    return EvaluateOptions(**given) if given else None


def compare_runs(runs: list[Path], out_path: Path, device: str = "auto", groups: list[str] | None = None,
                 options: EvaluateOptions | None = None) -> Path:
    """Compare, print the table and write the page; ``groups``: one name per run, rows merged per group (mean ±
    sd over the group's runs, as a sweep's seeds)."""
    dev = str(pick_device(device))
    progress = RichProgress()
    try:
        comparison = compare(runs, options, device=dev, progress=progress)
    finally:
        progress.close()
    names = values = None
    if groups is not None:
        merged = sweep_api.group_rows([row_values(r) for r in comparison.rows], groups)
        names = [f"{m.pop('run')} ({m.pop('seeds')} seeds)" for m in merged]
        values = merged
    columns, rows = table_cells(names or [r.name for r in comparison.rows],
                                values or [row_values(r) for r in comparison.rows])
    out.print(_transposed(columns, rows, protocol_line(comparison)))
    path = write_comparison(comparison, out_path, names, values, dev)
    out.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)
    return path


def _transposed(columns, rows, title: str) -> Table:
    """Measures down, runs across: a terminal is narrow and a comparison has more measures than runs."""
    table = Table(title=title, title_justify="left")
    table.add_column("measure")
    for r in rows:
        table.add_column(r[0], justify="right", overflow="fold")
    for i, column in enumerate(columns[1:], start=1):
        table.add_row(column, *(r[i] for r in rows))
    return table


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_command)
