"""`latentspace manifold`: the decoded latent manifold as k x k grids, and a 2-D map of the encoded test split."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from latentspace import api
from latentspace.cli.console import RichProgress
from latentspace.cli.encode import DeviceOpt, RunArg, SeedOpt
from latentspace.latent.manifold import PROJECTIONS
from latentspace.utils.device import pick_device
from latentspace.viz.figures import grid_figure
from latentspace.viz.grid import save_image
from latentspace.viz.plots import scatter_codes

out = Console()


def parse_indices(text: str | None, flag: str) -> tuple[int, ...] | None:
    """'3,17,42' -> (3, 17, 42); None stays None."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise typer.BadParameter(f"expected comma-separated test indices like 3,17,42, got {text!r}", param_hint=flag)
    return tuple(int(p) for p in parts)


def manifold_command(
    run_dir: RunArg,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for grid.png (or plane.png and pca_plane.png) "
                                          "and scatter.png.")] = Path("manifold"),
    method: Annotated[str, typer.Option("--method", help=f"2-D map of codes of more than 2 values: "
                                        f"{', '.join(PROJECTIONS)}.")] = "pca",
    k: Annotated[int, typer.Option("--k", help="Grid points per side.")] = 20,
    anchors: Annotated[str | None, typer.Option("--anchors", help="Three test indices spanning the plane "
                                                "(default: the first three of different labels).")] = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
) -> None:
    """Draw the learned manifold: decoded grids and a scatter of the test codes."""
    if method not in PROJECTIONS:
        raise typer.BadParameter(f"expected one of {', '.join(PROJECTIONS)}, got {method!r}", param_hint="--method")
    if k < 2:
        raise typer.BadParameter(f"expected at least 2 points per side, got {k}", param_hint="--k")
    result = api.manifold(run_dir, method=method, k=k, anchors=parse_indices(anchors, "--anchors"),
                          device=pick_device(device), seed=seed, progress=RichProgress())
    written = [save_image(grid_figure(g.images, k, g.title), out_dir / f"{g.name}.png") for g in result.grids]
    colour = f", coloured by {result.label_name}" if result.label_name else ""
    title = f"test codes ({result.method}, {len(result.xy):,} points{colour})"
    scatter = scatter_codes(result.xy, result.labels, result.class_names, title)
    written.append(save_image(scatter, out_dir / "scatter.png"))
    for path in written:
        out.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("manifold")(manifold_command)
