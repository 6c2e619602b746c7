"""`latentspace export`: codes, thumbnails and metadata for TensorBoard's Embedding Projector (--tensorboard),
and the encoder and decoder as ONNX graphs (--onnx)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from latentspace import api
from latentspace.api.export import export_onnx_model
from latentspace.cli.console import RichProgress
from latentspace.cli.encode import DeviceOpt, RunArg
from latentspace.utils.device import pick_device

out = Console()


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def export_command(
    run_dir: RunArg,
    tensorboard: Annotated[Path | None, typer.Option("--tensorboard", help="Log folder to write the projector "
                                                     "files to.")] = None,
    onnx: Annotated[Path | None, typer.Option("--onnx", help="Folder to write encoder.onnx, decoder.onnx and "
                                              "onnx.json to (needs the onnx extra).")] = None,
    split: Annotated[str, typer.Option("--split", help="train or test (--tensorboard).")] = "test",
    n: Annotated[int | None, typer.Option("--n", help="Export the first N codes (default: all; "
                                          "--tensorboard).")] = None,
    device: DeviceOpt = "auto",
) -> None:
    """Write the projector files of a split's codes (--tensorboard) and/or the model as ONNX (--onnx)."""
    if tensorboard is None and onnx is None:
        raise typer.BadParameter("give --tensorboard LOG_DIR, --onnx OUT_DIR or both", param_hint="--tensorboard")
    if split not in ("train", "test"):
        raise typer.BadParameter(f"expected train or test, got {split!r}", param_hint="--split")
    if n is not None and n < 1:
        raise typer.BadParameter(f"expected a positive number of codes, got {n}", param_hint="--n")
    if onnx is not None:
        result = export_onnx_model(run_dir, onnx)
        _say(f"wrote {result.encoder_path.name}, {result.decoder_path.name} and {result.meta_path.name} to "
             f"{onnx}; onnxruntime vs torch, max abs difference: encoder {result.encoder_max_abs_diff:.2g}, "
             f"decoder {result.decoder_max_abs_diff:.2g}")
    if tensorboard is not None:
        result = api.export(run_dir, tensorboard, split=split, n=n, device=pick_device(device),
                            progress=RichProgress())
        columns = ", ".join(result.columns)
        _say(f"wrote {result.n:,} codes of {result.latent_dim} values with metadata ({columns}) and thumbnails "
             f"to {result.log_dir}")
        _say(f"next: tensorboard --logdir {result.log_dir}   (then open the Projector tab)")


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)
