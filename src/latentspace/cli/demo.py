"""`latentspace demo`: the whole story on the built-in faces, from the size of pixel space to attribute edits.

It runs the other verbs one after another on one run folder, so what it writes is exactly what those verbs
write. A finished run is reused: a second `demo` only redraws the figures.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.rule import Rule

from latentspace.cli import attributes, data, edit, evolution, interpolate, manifold, reconstruct, sample, space
from latentspace.cli import train, traverse
from latentspace.train.run import is_run_folder, open_run

out = Console()


def _step(title: str) -> None:
    out.print(Rule(f"[bold]{title}"))


def _trained(run_dir: Path, epochs: int) -> bool:
    return is_run_folder(run_dir) and len(open_run(run_dir).metrics()) >= epochs


def demo_command(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the run and every figure.")] = Path("runs/demo"),
    epochs: Annotated[int, typer.Option("--epochs", help="Training epochs.")] = 8,
    size: Annotated[int, typer.Option("--size", help="Face size in pixels (32 trains 4x faster than 64).")] = 32,
    latent_dim: Annotated[int, typer.Option("--latent-dim", help="Size of the latent code.")] = 16,
    model: Annotated[str, typer.Option("--model", help="ae, vae, beta-vae or beta-tcvae.")] = "vae",
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
) -> None:
    """Generate faces, train a model on them and write every latent-space figure into one folder."""
    out_dir.mkdir(parents=True, exist_ok=True)
    run_dir = out_dir / f"faces-{model}"
    figures = out_dir / "figures"
    _step("1. The data: generated faces with known factors")
    data.info("faces", size=size)
    data.show("faces", n=64, out_path=figures / "faces.png", size=size)
    _step("2. How big is pixel space?")
    space.space(shape=f"{size}x{size}x3", levels=256, latent_dim=latent_dim, steps=10, dataset_size=22000)
    _step(f"3. Learning a {latent_dim}-d latent space ({model}, {epochs} epochs)")
    if _trained(run_dir, epochs):
        out.print(f"{run_dir} is already trained; reusing it", markup=False)
    else:
        train.train_command(out_dir=run_dir, data="faces", model=model, latent_dim=latent_dim, epochs=epochs,
                            size=size, device=device, resume=is_run_folder(run_dir))
    _step("4. Reconstructions and samples (prior vs a mixture fitted to the encoded data)")
    reconstruct.reconstruct_command(run_dir, images=[], out_path=figures / "reconstructions.png", n=16,
                                    device=device)
    for name in ("prior", "gmm"):
        sample.sample_command(run_dir, n=64, out_path=figures / f"samples_{name}.png", sampler=name, device=device)
    _step("5. Interpolation: pixel cross-fade vs latent paths, and how real each looks")
    interpolate.interpolate_command(run_dir, a="0", b="1", out_path=figures / "interpolation.png", gif=True,
                                    device=device)
    interpolate.interpolate_command(run_dir, pairs=30, json_path=figures / "realness.json", device=device)
    _step("6. The manifold, and how it was learned")
    manifold.manifold_command(run_dir, out_dir=figures / "manifold", device=device)
    evolution.evolution_command(run_dir, out_path=figures / "evolution.gif")
    _step("7. Attribute directions, edits and axis traversals")
    attributes.attributes_command(run_dir, method="mean", device=device)
    for attr in ("mask_on", "glasses", "hair_color=blond"):
        edit.edit_command(run_dir, image="3", attr=attr, strengths="-2,-1,0,1,2,3",
                          out_path=figures / f"edit_{attr.replace('=', '_')}.png", device=device)
    traverse.traverse_command(run_dir, out_path=figures / "traverse.png", device=device)
    out.print(Rule())
    out.print(f"done: the run is in {run_dir}, the figures in {figures}", markup=False, soft_wrap=True)
    for path in sorted(p for p in figures.rglob("*") if p.is_file()):
        out.print(f"  {path}", markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
