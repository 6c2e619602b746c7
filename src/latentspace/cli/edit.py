"""`latentspace edit`: move an image along an attribute direction, one strength per tile."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from latentspace import api
from latentspace.cli.console import RichProgress
from latentspace.cli.encode import DeviceOpt, RunArg
from latentspace.utils.device import pick_device
from latentspace.viz.figures import edit_strip
from latentspace.viz.grid import save_image

out = Console()


def parse_floats(text: str, flag: str) -> tuple[float, ...]:
    """'-2,-1,0,1,2' -> (-2.0, -1.0, 0.0, 1.0, 2.0)."""
    try:
        values = tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated numbers like -2,-1,0,1,2, got {text!r}",
                                 param_hint=flag) from None
    if not values:
        raise typer.BadParameter(f"expected at least one number, got {text!r}", param_hint=flag)
    if not all(math.isfinite(v) for v in values):
        raise typer.BadParameter(f"expected finite numbers, got {text!r}", param_hint=flag)
    return values


def edit_command(
    run_dir: RunArg,
    image: Annotated[str, typer.Argument(help="A test-split index or an image file.")],
    attr: Annotated[str, typer.Option("--attr", help="Attribute name, as `latentspace attributes` lists them.")],
    strengths: Annotated[str, typer.Option("--strengths", help="Comma-separated strengths in stds of the "
                                           "training codes (write --strengths=-2,-1,0,1,2).")] = "-2,-1,0,1,2",
    out_path: Annotated[Path, typer.Option("--out", help="Strip image to write.")] = Path("edit.png"),
    device: DeviceOpt = "auto",
) -> None:
    """Edit an image along an attribute direction (from <run>/directions.json, else fitted now)."""
    values = parse_floats(strengths, "--strengths")
    images = api.edit(run_dir, api.image_ref(image), attr, values, device=pick_device(device),
                      progress=RichProgress())
    strip = edit_strip(images, values, attr)
    save_image(strip, out_path)
    source = "directions.json" if api.saved_directions(api.open_run(run_dir)) is not None else "a direction fitted now"
    out.print(f"wrote {out_path}: image {image} edited along {attr} ({source}) at {len(values)} strengths, "
              f"{strip.width}x{strip.height} px", markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("edit")(edit_command)
