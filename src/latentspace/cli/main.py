"""The `latentspace` command: one verb per capability, each in its own module under cli/."""
from __future__ import annotations

import functools
import importlib
import logging
import os
import sys

import typer

# Each module defines register(app), which adds these verbs. Order here is the order of `latentspace --help`.
COMMANDS: dict[str, tuple[str, ...]] = {
    "data": ("data",), "space": ("space",), "train": ("train",), "encode": ("encode",), "decode": ("decode",),
    "reconstruct": ("reconstruct",), "prior": ("prior",), "sample": ("sample",), "interpolate": ("interpolate",),
    "manifold": ("manifold",), "evolution": ("evolution",), "attributes": ("attributes",), "edit": ("edit",),
    "traverse": ("traverse",), "describe": ("describe", "draw"), "locate": ("locate",), "ood": ("ood",),
    "export": ("export",), "evaluate": ("evaluate",), "report": ("report",), "compare": ("compare",),
    "sweep": ("sweep",), "explore": ("explore",), "zoo": ("zoo",), "demo": ("demo",),
}


def build_app(modules: tuple[str, ...] = tuple(COMMANDS)) -> typer.Typer:
    """The `latentspace` command with the verbs of ``modules``."""
    app = typer.Typer(
        name="latentspace",
        help="Learn the latent space of a set of images, then see it, measure it and use it.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    app.callback()(_group)  # a group even with one verb registered: the verb's name stays the first argument
    for name in modules:
        importlib.import_module(f"latentspace.cli.{name}").register(app)
    return app


def _group() -> None:
    """Learn the latent space of a set of images, then see it, measure it and use it."""


def app_for(argv: list[str]) -> typer.Typer:
    """The app a console run needs: the module of the verb it names only (importing the other two dozen cost
    about 0.5 s of every start), or every verb for --help, no verb or an unknown one."""
    verb = next((a for a in argv if not a.startswith("-")), None)
    module = next((m for m, verbs in COMMANDS.items() if verb in verbs), None)
    return build_app((module,)) if module else build_app()


@functools.cache
def _full_app() -> typer.Typer:
    return build_app()


def __getattr__(name: str):  # `from latentspace.cli.main import app`: every verb, built on first use
    if name == "app":
        return _full_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(app: typer.Typer | None = None) -> None:
    """Run ``app`` (default: the one sys.argv needs): user errors (ValueError, OSError, KeyError) become one red
    line and exit 2; Ctrl-C at any moment (start-up included, see cli.entry) becomes one line and exit 130."""
    try:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        (app or app_for(sys.argv[1:]))()
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
