"""`latentspace attributes`: a latent direction per attribute of the data, saved as <run>/directions.json."""
from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from latentspace import api
from latentspace.cli.console import RichProgress
from latentspace.cli.encode import DeviceOpt, RunArg
from latentspace.latent.directions import METHODS
from latentspace.utils.device import pick_device

out = Console()
HEADER = ("attribute", "method", "probe accuracy", "majority baseline")


def parse_names(text: str | None) -> tuple[str, ...]:
    """'mask_on, glasses' -> ('mask_on', 'glasses')."""
    return tuple(p.strip() for p in (text or "").split(",") if p.strip())


def attribute_table(fits: list[api.AttributeFit]) -> Table:
    table = Table(title="attribute directions (probe: held-out test codes split by the direction)")
    for i, name in enumerate(HEADER):
        table.add_column(name, justify="left" if i < 2 else "right")
    for f in fits:
        d = f.direction
        method = d.method if not d.conditioned_on else f"{d.method} (without {', '.join(d.conditioned_on)})"
        table.add_row(d.name, method, f"{d.probe_accuracy:.3f}", f"{f.majority_baseline:.3f}")
    return table


def attributes_command(
    run_dir: RunArg,
    method: Annotated[str, typer.Option("--method", help=f"{' or '.join(METHODS)}: mean difference or "
                                        "logistic-regression normal.")] = "logistic",
    condition_on: Annotated[str | None, typer.Option("--condition-on", help="Comma-separated attributes the "
                                                     "others are made orthogonal to.")] = None,
    device: DeviceOpt = "auto",
) -> None:
    """Fit a direction per attribute, save them to <run>/directions.json and print how well each separates."""
    if method not in METHODS:
        raise typer.BadParameter(f"expected one of {', '.join(METHODS)}, got {method!r}", param_hint="--method")
    fits = api.attributes(run_dir, method=method, condition_on=parse_names(condition_on),
                          device=pick_device(device), progress=RichProgress())
    if not fits:
        raise ValueError(f"{run_dir}: the run's data has no labels or factors with two classes: no directions")
    path = api.save_run_directions(api.open_run(run_dir), [f.direction for f in fits])
    out.print(attribute_table(fits))
    out.print(f"wrote {path}: {len(fits)} directions", markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("attributes")(attributes_command)
