"""`latentspace describe` (an image in words, read off its code) and `latentspace draw` (images that fit words)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from latentspace import api
from latentspace.api.drawing import MAX_DRAW
from latentspace.cli.console import RichProgress
from latentspace.cli.encode import DeviceOpt, RunArg
from latentspace.latent.conditional import DEFAULT_GUIDANCE
from latentspace.utils.device import pick_device
from latentspace.utils.files import write_npz
from latentspace.viz.grid import image_grid, save_image

out = Console()
METHOD_HELP = "; ".join(f"{name}: {what}" for name, (what, _) in api.DRAW_METHODS.items())


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def describe_command(
    run_dir: RunArg,
    images: Annotated[list[str] | None, typer.Argument(help="Test-split indices or image files.",
                                                       show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the descriptions as JSON data.")] = False,
    terms: Annotated[bool, typer.Option("--terms", help="List the run's vocabulary: every term `describe` "
                                        "prints and `draw` reads.")] = False,
    device: DeviceOpt = "auto",
) -> None:
    """Describe images in the run's own words (its labels, attributes.csv columns or factors), read off their
    latent codes by probes fitted on the training codes: each value with its probability, each continuous
    factor with a 95% interval. Attributes the codes do not hold above chance are left out, and the line says
    which."""
    if terms:
        _say("\n".join(api.run_vocabulary(api.open_run(run_dir)).known_terms()))
        return
    if not images:
        raise typer.BadParameter("give at least one test-split index or image file (or --terms)",
                                 param_hint="IMAGES")
    found = api.describe(run_dir, [api.image_ref(i) for i in images], pick_device(device), RichProgress())
    if as_json:
        _say(json.dumps([d.to_dict() for d in found], indent=2))
    else:
        for d in found:
            _say(d.line())


def draw_command(
    run_dir: RunArg,
    description: Annotated[str, typer.Argument(help="Comma-separated terms: 'name', 'no name', 'name=value' or "
                                               "a value's phrase ('black hair, mask on, no glasses'; MNIST: '7'). "
                                               "`latentspace describe RUN --terms` lists them.")],
    n: Annotated[int, typer.Option("--n", "-n", help="How many images.")] = 16,
    out_path: Annotated[Path, typer.Option("--out", help="A grid image (.png, .jpg, .webp) or .npz: uint8 "
                                           "'images' (N, C, H, W), codes 'z' (N, D) and the attribute values "
                                           "'conditions' (N, A).")] = Path("drawn.png"),
    guidance: Annotated[float, typer.Option("--guidance", help="Classifier-free guidance: 0 ignores the "
                                            "description, 1 is the conditional prior, more holds to the "
                                            "description harder with less variety.")] = DEFAULT_GUIDANCE,
    method: Annotated[str, typer.Option("--method", help=METHOD_HELP)] = "prior",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the draws.")] = 0,
    device: DeviceOpt = "auto",
) -> None:
    """Draw images that fit a description. Terms left out are drawn from the data (the values of a training
    image with every term asked for). The conditional prior is fitted on first use (about a minute on 20,000
    codes) and stored in the run."""
    if method not in api.DRAW_METHODS:
        raise typer.BadParameter(f"expected one of {', '.join(api.DRAW_METHODS)}, got {method!r}",
                                 param_hint="--method")
    if not 1 <= n <= MAX_DRAW:
        raise typer.BadParameter(f"expected 1..{MAX_DRAW} images, got {n}", param_hint="--n")
    if not guidance >= 0:
        raise typer.BadParameter(f"expected a number >= 0, got {guidance}", param_hint="--guidance")
    result = api.draw(run_dir, description, n, guidance, method, seed, pick_device(device), RichProgress())
    if out_path.suffix.lower() == ".npz":
        write_npz(out_path, {"images": result.images, "z": result.z, "conditions": result.conditions})
        what = f"images {result.images.shape} uint8, z {result.z.shape}, conditions {result.conditions.shape}"
    else:
        grid = image_grid(result.images)
        save_image(grid, out_path)
        what = f"{grid.width}x{grid.height} px"
    asked = ", ".join(t.text for t in result.terms) or "nothing (every attribute drawn from the data)"
    _say(f"wrote {out_path}: {n} images of {asked} ({method}, guidance {guidance:g}, seed {seed}), {what}")


def register(app: typer.Typer) -> None:
    app.command("describe")(describe_command)
    app.command("draw")(draw_command)
