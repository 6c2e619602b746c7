"""The `latentspace` command: one verb per capability, each in its own module under cli/."""
from __future__ import annotations

import importlib
import logging
import sys

import typer

app = typer.Typer(
    name="latentspace",
    help="Learn the latent space of a set of images, then see it, measure it and use it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module defines register(app). Order here is the order of `latentspace --help`.
COMMAND_MODULES = (
    "data", "space", "train", "encode", "decode", "reconstruct", "prior", "sample", "interpolate",
    "manifold", "evolution", "attributes", "edit", "traverse", "locate", "ood", "export", "evaluate", "report",
    "explore", "demo",
)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"latentspace.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"latentspace.cli.{name}":
                continue  # verb not built yet
            raise
        module.register(app)


_register_all()


def main() -> None:
    """Console entry point: user errors (ValueError, FileNotFoundError, KeyError) become one red line, exit 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except (ValueError, FileNotFoundError, KeyError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
        sys.exit(2)
