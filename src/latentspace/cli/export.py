"""`latentspace export`: codes, thumbnails and metadata for TensorBoard's Embedding Projector."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from latentspace import api
from latentspace.cli.console import RichProgress
from latentspace.cli.encode import DeviceOpt, RunArg
from latentspace.utils.device import pick_device

out = Console()


def export_command(
    run_dir: RunArg,
    tensorboard: Annotated[Path, typer.Option("--tensorboard", help="Log folder to write the projector files to.")],
    split: Annotated[str, typer.Option("--split", help="train or test.")] = "test",
    n: Annotated[int | None, typer.Option("--n", help="Export the first N codes (default: all).")] = None,
    device: DeviceOpt = "auto",
) -> None:
    """Write the projector files (tensors, metadata, sprite, config) of a split's codes."""
    if split not in ("train", "test"):
        raise typer.BadParameter(f"expected train or test, got {split!r}", param_hint="--split")
    if n is not None and n < 1:
        raise typer.BadParameter(f"expected a positive number of codes, got {n}", param_hint="--n")
    result = api.export(run_dir, tensorboard, split=split, n=n, device=pick_device(device), progress=RichProgress())
    columns = ", ".join(result.columns)
    out.print(f"wrote {result.n:,} codes of {result.latent_dim} values with metadata ({columns}) and thumbnails "
              f"to {result.log_dir}", markup=False, highlight=False, soft_wrap=True)
    out.print(f"next: tensorboard --logdir {result.log_dir}   (then open the Projector tab)", markup=False,
              highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)
