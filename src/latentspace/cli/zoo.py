"""`latentspace zoo`: the pretrained run folders shipped in the package, each with its one-line card.

Every verb that takes a run takes ``zoo:NAME`` too; the first use copies the folder into the user cache
(train.zoo), so nothing is ever written into the installed package.
"""
from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from latentspace.train.zoo import CARD, PREFIX, zoo_cache_dir, zoo_model, zoo_models

out = Console()


def zoo_command(
    name: Annotated[str | None, typer.Argument(help="A model's name: print its full card (MODEL_CARD.md).")] = None,
) -> None:
    """List the pretrained models (no training, nothing fetched); use them as zoo:NAME with any verb."""
    if name is not None:
        model = zoo_model(name.removeprefix(PREFIX))
        out.print((model.source / CARD).read_text(encoding="utf-8"), markup=False, highlight=False)
        return
    models = zoo_models()
    if not models:
        out.print("this install ships no pretrained models (zoo/build.py makes them)", markup=False)
        return
    table = Table(title="pretrained models: use as zoo:NAME, e.g. `latentspace explore zoo:faces`")
    for column in ("name", "card", "MB"):
        table.add_column(column, justify="right" if column == "MB" else "left")
    for model in models.values():
        table.add_row(PREFIX + model.name, model.summary(), f"{model.size_bytes / 1e6:.1f}")
    out.print(table)
    out.print(f"first use copies a model to {zoo_cache_dir()}; caches that verbs write go there", markup=False,
              highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("zoo")(zoo_command)
