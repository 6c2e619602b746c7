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
from latentspace.cli.encode import DeviceOpt, RunArg, SeedOpt
from latentspace.cli.evaluate import (
    BinarizedOpt, DiffusionStepsOpt, IWImagesOpt, KOpt, SamplesOpt, evaluate_options,
)  # fmt: skip
from latentspace.report import build_context, write_report
from latentspace.utils.device import pick_device

out = Console()
MAX_REPORT_MB = 5.0


def make_report(run_dir: Path, out_path: Path | None, device: str, options: EvaluateOptions) -> Path:
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
    iw_images: IWImagesOpt = 1000,
    binarized: BinarizedOpt = False,
    samples: SamplesOpt = 2000,
    diffusion_steps: DiffusionStepsOpt = 4000,
    seed: SeedOpt = 0,
    open_: Annotated[bool, typer.Option("--open", help="Open the report in the default browser.")] = False,
    device: DeviceOpt = "auto",
) -> None:
    """Write one self-contained HTML report of a run (pictures embedded; it fetches nothing).

    Its sections follow the story: pixel space, the data, the manifold, the axes, generation, interpolation,
    attribute edits, the evaluation table and the run itself. The numbers come from RUN/evaluation.json,
    measured first (as `latentspace evaluate` does, with the same options) when absent or stale."""
    options = evaluate_options(k, iw_images, binarized, samples, diffusion_steps, seed)
    path = make_report(run_dir, out_path, device, options)
    url = path.resolve().as_uri()
    out.print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB): {url}", markup=False, highlight=False,
              soft_wrap=True)
    if open_:
        webbrowser.open(url)


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)
