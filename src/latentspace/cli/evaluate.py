"""`latentspace evaluate`: measure a run (reconstruction, likelihood, compression against PCA, sample quality,
codes as features, disentanglement, edits) into ``<run>/evaluation.json`` and print one table."""
from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from latentspace import api
from latentspace.api.evaluate import EvaluateOptions, Evaluation, evaluation_rows, protocols
from latentspace.cli.console import RichProgress
from latentspace.cli.encode import DeviceOpt, RunArg, SeedOpt
from latentspace.utils.device import pick_device

out = Console()


def evaluation_table(ev: Evaluation) -> Table:
    table = Table(title=f"{ev.dataset}, {ev.objective}, {ev.latent_dim}-d latent: {ev.run}")
    for name, justify in (("section", "left"), ("measure", "left"), ("value", "right"), ("better", "left")):
        table.add_column(name, justify=justify)
    previous = None
    for row in evaluation_rows(ev):
        table.add_row(row.section if row.section != previous else "", row.measure, row.value, row.better)
        previous = row.section
    return table


def print_evaluation(ev: Evaluation) -> None:
    out.print(evaluation_table(ev))
    for section, text in protocols(ev).items():
        out.print(f"[bold]{section}[/bold]: {text}", soft_wrap=False)
    for note in ev.notes:
        out.print(f"note: {note}", markup=False)


KOpt = Annotated[int | None, typer.Option("--k", help="Importance samples per image for the IW NLL bound "
                                          "(default 1000 for images up to 32 px, else 100).")]
IWImagesOpt = Annotated[int, typer.Option("--iw-images", help="Test images (seeded subset) in the IW bound.")]
BinarizedOpt = Annotated[bool, typer.Option("--binarized", help="Also the IW bound on a dynamically binarised test "
                                            "set (MNIST family; compare with Burda et al. 2016).")]
SamplesOpt = Annotated[int, typer.Option("--samples", help="Images per sampler for FD, precision and recall.")]
DiffusionStepsOpt = Annotated[int, typer.Option("--diffusion-steps", help="Training steps of the latent diffusion "
                                                "prior (fitted once, stored in the run).")]


def evaluate_options(k: int | None, iw_images: int, binarized: bool, samples: int, diffusion_steps: int,
                     seed: int) -> EvaluateOptions:
    try:
        return EvaluateOptions(iw_k=k, iw_n=iw_images, binarized=binarized, samples=samples,
                               diffusion_steps=diffusion_steps, seed=seed)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def evaluate_command(
    run_dir: RunArg,
    k: KOpt = None,
    iw_images: IWImagesOpt = 1000,
    binarized: BinarizedOpt = False,
    samples: SamplesOpt = 2000,
    diffusion_steps: DiffusionStepsOpt = 4000,
    seed: SeedOpt = 0,
    refresh: Annotated[bool, typer.Option("--refresh", help="Measure again even if evaluation.json holds these "
                                          "numbers.")] = False,
    device: DeviceOpt = "auto",
) -> None:
    """Measure the run and print one table; every number says which protocol produced it.

    Results are cached in RUN/evaluation.json (keyed by the weights and the options), so `latentspace report`
    reads them without measuring again."""
    options = evaluate_options(k, iw_images, binarized, samples, diffusion_steps, seed)
    ev = api.evaluate(run_dir, options, device=pick_device(device), progress=RichProgress(), refresh=refresh)
    print_evaluation(ev)
    out.print(f"wrote {run_dir / 'evaluation.json'}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)
