"""`latentspace report`: one self-contained HTML page telling the run's whole story, from the size of pixel
space to attribute edits, with a measured number under every picture."""
from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from latentspace.api.evaluate import EvaluateOptions
from latentspace.cli.console import RichProgress, console
from latentspace.cli.encode import DeviceOpt, RunArg
from latentspace.cli.evaluate import (
    BinarizedOpt, KOpt,
)  # fmt: skip
from latentspace.report import build_context, write_report
from latentspace.utils.device import pick_device

out = Console()
MAX_REPORT_MB = 5.0


def make_report(run_dir: Path, out_path: Path | None, device: str, options: EvaluateOptions | None) -> Path:
    """Build and write the report; returns its path (default ``<run>/report.html``)."""
    path = out_path if out_path is not None else run_dir / "report.html"
    context = build_context(run_dir, options, device=pick_device(device), progress=RichProgress(),
                            on_section=lambda name: console.print(f"report: {name}", markup=False, highlight=False))
    write_report(context, path)
    size_mb = path.stat().st_size / 1e6
    if size_mb > MAX_REPORT_MB:
        console.print(f"warning: {path} is {size_mb:.1f} MB, more than {MAX_REPORT_MB:g} MB", markup=False)
    return path


def report_command(
    run_dir: RunArg,
    out_path: Annotated[Path | None, typer.Option("--out", help="HTML file to write (default RUN/report.html).")] = None,
    k: KOpt = None,
    iw_images: Annotated[int | None, typer.Option("--iw-images", help="Test images (seeded subset) in the IW "
                                                  "bound (default 1000).")] = None,
    binarized: BinarizedOpt = False,
    samples: Annotated[int | None, typer.Option("--samples", help="Images per sampler for FD, precision and "
                                                "recall (default 2000).")] = None,
    diffusion_steps: Annotated[int | None, typer.Option("--diffusion-steps", help="Training steps of the latent "
                                                        "diffusion prior (default 4000).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of every random choice (default 0).")] = None,
    open_: Annotated[bool, typer.Option("--open", help="Open the report in the default browser.")] = False,
    device: DeviceOpt = "auto",
) -> None:
    """Write one self-contained HTML report of a run (pictures embedded; it fetches nothing).

    Its sections follow the story: pixel space, the data, the manifold, the axes, generation, interpolation,
    attribute edits, the evaluation table and the run itself. The numbers come from RUN/evaluation.json as
    `latentspace evaluate` left it for the current weights; with no evaluation (or new weights), or when
    measurement options are given here, the run is measured first, as `evaluate` does."""
    given = {name: v for name, v in dict(iw_k=k, iw_n=iw_images, samples=samples, diffusion_steps=diffusion_steps,
                                         seed=seed, binarized=binarized or None).items() if v is not None}
    try:
        options = EvaluateOptions(**given) if given else None
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    path = make_report(run_dir, out_path, device, options)
    url = path.resolve().as_uri()
    out.print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB): {url}", markup=False, highlight=False,
              soft_wrap=True)
    if open_:
        webbrowser.open(url)


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)
