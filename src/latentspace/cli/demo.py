"""`latentspace demo`: the whole story on one dataset, from the size of pixel space to attribute edits, ending
in one HTML report.

It runs the other verbs one after another on one run folder, so what it writes is exactly what those verbs
write, then measures the run (`evaluate`) and writes ``<out>/report.html`` (`report`). A finished run is
reused: a second `demo` only redraws the figures and the report.
"""
from __future__ import annotations

import time
import webbrowser
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.rule import Rule

from latentspace import api
from latentspace.api.evaluate import EvaluateOptions
from latentspace.cli import attributes, data, edit, evolution, evaluate, interpolate, manifold, reconstruct, sample
from latentspace.cli import space, train, traverse
from latentspace.cli.console import RichProgress
from latentspace.cli.report import make_report
from latentspace.models.objectives import OBJECTIVES
from latentspace.train.run import is_run_folder, open_run
from latentspace.train.zoo import PREFIX, resolve_run, zoo_model
from latentspace.utils.device import pick_device

out = Console()
FACE_EDITS = ("mask_on", "glasses", "hair_color=blond")
# The demo's evaluation is lighter than `evaluate`'s defaults so the whole demo stays within minutes on 2 cores;
# the report states k and the number of images next to every figure. At 64 px (2 cores) the demo's first
# settings (IW k=100 on 500 images, 2,000 samples, 2,000 diffusion steps, on-manifold k=16) cost 188 s of
# measuring: IW 57 s, the diffusion prior 59 s, on-manifold scoring 47 s. The priors' steps follow the image size:
# on the 64 px faces the decoder limits, and 500 steps (7 s) gave the FD of 1,000 and 4,000 (833 / 827, 825 / 807
# and 827 / 803 at seeds 0 / 1) and as many drawn faces showing their term (0.996-1.000); on MNIST 4,000 steps
# matter (FD 23 / 20 against 41 / 35 at 1,000), so smaller images keep 1,000, as the demo had.
DEMO_EVALUATION = EvaluateOptions(iw_k=16, iw_n=200, samples=1000, diffusion_steps=1000, ood_k=8, ood_n=250)
LARGE_DIFFUSION_STEPS = 500  # from DEMO_SIZE up
DEMO_SIZE = 64  # faces and folders: an eye is 4-5 px wide at 64 px, 2 at 32
LARGE_EPOCHS, SMALL_EPOCHS = 2, 8  # from 64 px up an epoch holds 4x the pixels of a 32 px one


_marks: list[tuple[str, float]] = []  # (step, when it began) of the demo under way


def _step(title: str) -> None:
    _marks.append((title.split(".")[0] if title[0].isdigit() else "training", time.perf_counter()))
    out.print(Rule(f"[bold]{title}"))


def _step_times() -> str:
    """'step: seconds' of each step so far, e.g. '1: 9 s, training: 74 s, 2: 0 s, ...'."""
    ends = [t for _, t in _marks[1:]] + [time.perf_counter()]
    return ", ".join(f"{name}: {end - begun:.0f} s" for (name, begun), end in zip(_marks, ends))


def _trained(run_dir: Path, epochs: int) -> bool:
    return is_run_folder(run_dir) and len(open_run(run_dir).metrics()) >= epochs


def _run_name(data_name: str, model: str) -> str:
    stem = Path(data_name).name if Path(data_name).is_dir() else data_name
    return f"{stem}-{model}"


def demo_command(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the run, the figures and report.html.")] = Path(
        "runs/demo"),
    data_name: Annotated[str, typer.Option("--data", help="faces (generated, offline), mnist, fashion-mnist, "
                                           "kmnist, shapes, or a folder of images.")] = "faces",
    epochs: Annotated[int | None, typer.Option("--epochs", help=f"Training epochs (default {SMALL_EPOCHS}, or "
                                               f"{LARGE_EPOCHS} for images of {DEMO_SIZE} px and more).")] = None,
    size: Annotated[int | None, typer.Option("--size", help=f"Image size in pixels (default: {DEMO_SIZE} for "
                                             "faces and folders, the data's own otherwise).")] = None,
    latent_dim: Annotated[int, typer.Option("--latent-dim", help="Size of the latent code.")] = 16,
    model: Annotated[str, typer.Option("--model", help=f"Objective: {', '.join(OBJECTIVES)} (see train --help).")] = "vae",
    diffusion_steps: Annotated[int | None, typer.Option("--diffusion-steps", help="Training steps of the latent "
                                                        f"diffusion priors (default {DEMO_EVALUATION.diffusion_steps},"
                                                        f" or {LARGE_DIFFUSION_STEPS} for images of {DEMO_SIZE} px "
                                                        "and more).")] = None,
    pretrained: Annotated[bool, typer.Option("--zoo", "--pretrained", help="Tell the story from the pretrained "
                                             "model of --data (`latentspace zoo`): no training, every measure "
                                             "already cached, about 20 s on 2 cores.")] = False,
    open_: Annotated[bool, typer.Option("--open", help="Open the report in the default browser at the end.")] = False,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
) -> None:
    """Train a model on a dataset, draw every latent-space figure and end with one HTML report of the story."""
    started = time.perf_counter()
    _marks.clear()
    if pretrained:
        _pretrained(out_dir, data_name, device, open_, started)
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    is_folder = Path(data_name).is_dir()
    if size is None and (data_name == "faces" or is_folder):
        size = DEMO_SIZE
    if epochs is None:
        epochs = LARGE_EPOCHS if (size or 0) >= DEMO_SIZE else SMALL_EPOCHS
    run_dir = out_dir / _run_name(data_name, model)
    figures = out_dir / "figures"
    _step(f"1. The data: {data_name}")
    data.info(data_name, size=size)
    data.show(data_name, n=64, out_path=figures / "data.png", size=size)
    if not _trained(run_dir, epochs):
        _train(run_dir, data_name, model, latent_dim, epochs, size, device)
    else:
        out.print(f"{run_dir} is already trained; reusing it", markup=False)
    run = open_run(run_dir)
    c, h, w = run.model_config.image_shape
    if diffusion_steps is None:
        diffusion_steps = LARGE_DIFFUSION_STEPS if h >= DEMO_SIZE else DEMO_EVALUATION.diffusion_steps
    options = replace(DEMO_EVALUATION, diffusion_steps=diffusion_steps)
    _step("2. How big is pixel space?")
    space.space(shape=f"{h}x{w}x{c}", levels=256, latent_dim=latent_dim, steps=10,
                dataset_size=len(run.dataset("train")))
    _figures(run_dir, figures, device, data_name == "faces")
    _finish(run_dir, figures, out_dir, device, options, open_, started)


def _pretrained(out_dir: Path, data_name: str, device: str, open_: bool, started: float) -> None:
    """The demo from the shipped model of ``data_name``: its story, drawn from caches, with no training."""
    run_dir = resolve_run(f"{PREFIX}{data_name}")  # an unknown name: a one-line error listing the zoo
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = out_dir / "figures"
    run = open_run(run_dir)
    c, h, w = run.model_config.image_shape
    _step(f"1-2. The pretrained model {PREFIX}{data_name}, and how big pixel space is")
    out.print(zoo_model(data_name).summary(), markup=False, highlight=False)
    space.space(shape=f"{h}x{w}x{c}", levels=256, latent_dim=run.model_config.latent_dim, steps=10,
                dataset_size=len(run.dataset("train")))
    _figures(run_dir, figures, device, data_name == "faces")
    _finish(run_dir, figures, out_dir, device, None, open_, started)


def _finish(run_dir: Path, figures: Path, out_dir: Path, device: str, options: EvaluateOptions | None,
            open_: bool, started: float) -> None:
    """Steps 8 and 9: the measures (``options`` None: whatever the run has cached) and the report."""
    _step("8. Measuring it all: reconstruction, likelihood, compression, samples, axes, edits")
    evaluation = api.cached_evaluation(run_dir, None) if options is None else None
    if evaluation is None:
        evaluation = api.evaluate(run_dir, options or DEMO_EVALUATION, device=pick_device(device),
                                  progress=RichProgress())
    evaluate.print_evaluation(evaluation)
    _step("9. One page with the whole story")
    report = make_report(run_dir, out_dir / "report.html", device, options)
    url = report.resolve().as_uri()
    out.print(Rule())
    out.print(f"done in {time.perf_counter() - started:.0f} s: the run is in {run_dir}, the figures in {figures}",
              markup=False, soft_wrap=True)
    out.print(f"time per step: {_step_times()}", markup=False, highlight=False, soft_wrap=True)
    out.print(f"report: {url}", markup=False, highlight=False, soft_wrap=True)
    if open_:
        webbrowser.open(url)


def _train(run_dir: Path, data_name: str, model: str, latent_dim: int, epochs: int, size: int | None,
           device: str) -> None:
    _step(f"Learning a {latent_dim}-d latent space ({model}, {epochs} epochs)")
    train.train_command(out_dir=run_dir, data=data_name, model=model, latent_dim=latent_dim, epochs=epochs,
                        size=size, device=device, resume=is_run_folder(run_dir))


def _figures(run_dir: Path, figures: Path, device: str, faces: bool) -> None:
    _step("3. Reconstructions and samples (prior vs a mixture fitted to the encoded data)")
    reconstruct.reconstruct_command(run_dir, images=[], out_path=figures / "reconstructions.png", n=16,
                                    device=device)
    for name in ("prior", "gmm"):
        sample.sample_command(run_dir, n=64, out_path=figures / f"samples_{name}.png", sampler=name, device=device)
    _step("4. Interpolation: pixel cross-fade vs latent paths, and how real each looks")
    interpolate.interpolate_command(run_dir, a="0", b="1", out_path=figures / "interpolation.png", gif=True,
                                    device=device)
    _step("5. The manifold, and how it was learned")
    manifold.manifold_command(run_dir, out_dir=figures / "manifold", device=device)
    evolution.evolution_command(run_dir, out_path=figures / "evolution.gif")
    _step("6. Attribute directions and edits")
    test = open_run(run_dir).dataset("test")
    if test.labels is None and test.factors is None:
        out.print("this data has no labels or factors: no attribute directions", markup=False)
    else:
        attributes.attributes_command(run_dir, method="mean", device=device)
    for attr in FACE_EDITS if faces else ():
        edit.edit_command(run_dir, image="3", attr=attr, strengths="-2,-1,0,1,2,3",
                          out_path=figures / f"edit_{attr.replace('=', '_')}.png", device=device)
    _step("7. Which latent axis holds which factor")
    traverse.traverse_command(run_dir, out_path=figures / "traverse.png", device=device)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
