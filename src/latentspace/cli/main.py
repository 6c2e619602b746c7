"""The `latentspace` command: one verb per capability, each in its own module under cli/."""
from __future__ import annotations

import importlib
import logging
import os
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
    "manifold", "evolution", "attributes", "edit", "traverse", "describe", "locate", "ood", "export", "evaluate", "report",
    "compare", "sweep", "explore", "zoo", "demo",
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
    """Console entry point: user errors (ValueError, OSError, KeyError) become one red line and exit 2;
    Ctrl-C at any moment (start-up included) becomes one line and exit 130."""
    try:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        app()
    except (ValueError, OSError, KeyError) as e:
        _fail(error_line(e), 2)
    except KeyboardInterrupt:
        _fail("interrupted", 130)


def error_line(e: BaseException) -> str:
    """One line for the user: the message, never a traceback; OSErrors name their file."""
    if isinstance(e, KeyError) and e.args:
        text = str(e.args[0])
    elif isinstance(e, OSError) and e.strerror:
        where = f"{e.filename}: " if e.filename else ""
        text = f"{where}{e.strerror}"
    else:
        text = str(e) or type(e).__name__
    return " ".join(text.split())


def _fail(message: str, code: int) -> None:
    try:
        if int(os.environ.get("RANK", "0")) == 0:  # under torchrun every rank fails alike: one line is enough
            typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    except KeyboardInterrupt:  # a second Ctrl-C while printing: still exit with the code, quietly
        pass
    sys.exit(code)
