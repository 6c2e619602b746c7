"""`latentspace explore`: a live web page over a run folder, served on this machine until Ctrl-C."""
from __future__ import annotations

import ipaddress
import socket
import threading
import time
import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from latentspace.api.points import MAP_METHODS
from latentspace.cli.console import RichProgress
from latentspace.cli.encode import RunArg

out = Console()
err = Console(stderr=True)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1): only this machine can connect."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def explore_command(
    run_dir: RunArg,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to serve on (0: any free port).")] = 8000,
    host: Annotated[str, typer.Option("--host", help="Address to bind. The default serves this machine only; "
                                      "0.0.0.0 serves your network, with no authentication.")] = "127.0.0.1",
    open_browser: Annotated[bool, typer.Option("--open", help="Open the page in the default browser.")] = False,
    map_method: Annotated[str, typer.Option("--map", help=f"Map shown first: {', '.join(MAP_METHODS)}. t-SNE and "
                                            "UMAP are computed once (a minute or two) and cached beside the run; "
                                            "cached ones are always offered.")] = "pca",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the t-SNE / UMAP map.")] = 0,
    threads: Annotated[int, typer.Option("--threads", min=1, help="CPU threads per model call while serving. "
                                         "Concurrent decodes are batched into one call; one thread leaves the "
                                         "other cores to the web server, the fastest on 2 cores.")] = 1,
) -> None:
    """Explore a trained run in your browser: point anywhere on the map of its codes and see the image that
    lives there, with the real training images nearest to it; pin an image and move it with a slider per
    attribute and per latent axis; interpolate between two images in pixel and latent space with each frame's
    realness; upload your own image to see where it lands. Serves a local page and its JSON API (docs at
    /docs) until Ctrl-C."""
    import torch
    import uvicorn

    from latentspace.explorer import create_app
    from latentspace.explorer.app import listen

    if map_method not in MAP_METHODS:
        raise typer.BadParameter(f"expected one of {', '.join(MAP_METHODS)}, got {map_method!r}", param_hint="--map")
    if not is_loopback(host):
        err.print(f"warning: --host {host} serves the explorer beyond this machine, and it has no authentication: "
                  "anyone who can reach the port can use it and upload to it.", style="yellow", markup=False,
                  highlight=False, soft_wrap=True)
    sock = listen(host, port)
    try:
        if map_method != "pca":
            out.print(f"the {map_method} map is computed once (a minute or two for 5,000 codes) and cached beside "
                      "the run", markup=False, highlight=False, soft_wrap=True)
        start = time.perf_counter()
        app = create_app(Path(run_dir), map_method=map_method, seed=seed, progress=RichProgress())
        torch.set_num_threads(threads)  # after startup, which may encode a split with every core
        bound_host, bound_port = sock.getsockname()[:2]
        shown = bound_host if bound_host not in ("0.0.0.0", "::") else socket.gethostname()
        url = f"http://{f'[{shown}]' if ':' in shown else shown}:{bound_port}/"
        out.print(f"latentspace explorer of {run_dir} ready in {time.perf_counter() - start:.1f} s at {url}  "
                  f"(API docs: {url}docs). Press Ctrl-C to stop.", markup=False, highlight=False, soft_wrap=True)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
        if open_browser:
            threading.Thread(target=_open_when_started, args=(server, url), daemon=True).start()
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled, once it has shut down
            pass
    finally:
        sock.close()
    out.print("explorer stopped", markup=False, highlight=False)


def _open_when_started(server, url: str) -> None:
    while not server.started and not server.should_exit:
        time.sleep(0.05)
    if server.started:
        webbrowser.open(url)


def register(app: typer.Typer) -> None:
    app.command("explore")(explore_command)
