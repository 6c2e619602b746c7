"""`latentspace evolution`: an animation of the probe codes epoch by epoch, as training shaped the latent space."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from latentspace import api
from latentspace.cli.encode import RunArg
from latentspace.viz.animate import DURATION_MS, MAX_FRAMES, evolution_frames, save_gif

out = Console()


def evolution_command(
    run_dir: RunArg,
    out_path: Annotated[Path, typer.Option("--out", help="Animation to write (.gif).")] = Path("evolution.gif"),
    duration_ms: Annotated[int, typer.Option("--duration-ms", help="How long each epoch is shown.")] = DURATION_MS,
    max_frames: Annotated[int, typer.Option("--max-frames", help="At most this many frames, evenly spaced over "
                                            "the epochs with the first and last kept; 0: every epoch.")] = MAX_FRAMES,
) -> None:
    """Animate the stored probe codes over the epochs, one frame per epoch on fixed axes (long runs: every
    few epochs, at most --max-frames)."""
    if out_path.suffix.lower() != ".gif":
        raise typer.BadParameter(f"the animation is a .gif, got {out_path}", param_hint="--out")
    if duration_ms < 1:
        raise typer.BadParameter(f"expected a positive duration, got {duration_ms}", param_hint="--duration-ms")
    if max_frames == 1 or max_frames < 0:
        raise typer.BadParameter(f"expected 0 (every epoch) or at least 2, got {max_frames}", param_hint="--max-frames")
    result = api.evolution(run_dir)
    frames = evolution_frames(result, max_frames=max_frames or None)
    save_gif(frames, out_path, duration_ms=duration_ms)
    how = "raw 2-D codes" if result.projection == "latent" else "PCA fitted on the last epoch"
    out.print(f"wrote {out_path}: {len(frames)} frames ({len(result.epochs)} epochs, {result.epochs[0]}.."
              f"{result.epochs[-1]}), "
              f"{result.xy.shape[1]} probe codes, {how}, {frames[0].width}x{frames[0].height} px",
              markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("evolution")(evolution_command)
