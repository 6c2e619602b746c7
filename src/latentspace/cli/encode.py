"""`latentspace encode`: images (a dataset, a folder or image files) -> their latent codes in a .npz file.

The codes file holds ``z`` (N, D) float32 and, when the source has them, ``labels`` (N,) int64 with
``class_names`` (K,), ``factors`` (N, F) float32 with ``factor_names`` (F,), and ``names`` (N,) (source
names). Strings are fixed-width unicode arrays, so the file loads with allow_pickle=False.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer
from PIL import Image, UnidentifiedImageError
from rich.console import Console

from latentspace.cli.console import RichProgress
from latentspace.data import ImageSet, available, load
from latentspace.data.folder import decode_image
from latentspace.data.resize import convert_channels
from latentspace.latent.codes import encode_images
from latentspace.models import Autoencoder
from latentspace.train import Run, open_run
from latentspace.utils.device import pick_device
from latentspace.utils.files import write_npz

out = Console()

RunArg = Annotated[Path, typer.Argument(help="Run folder written by `latentspace train`.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Folder holding the dataset files "
                                                  "(default: the run's).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for random choices: posterior samples, which images.")]


def open_model(run_dir: Path, device: str) -> tuple[Run, Autoencoder]:
    run = open_run(run_dir)
    return run, run.model(pick_device(device))


def load_sources(run: Run, sources: list[str], split: str | None, data_dir: Path | None, seed: int,
                 n: int | None = None) -> ImageSet:
    """A dataset name or a folder (one source), else image files; sized to the run's model.

    split: None gives the test split of a named dataset and all images of a folder. The run's own dataset
    is read from where the run read it, with the run's data seed (generated data and folder splits).
    """
    if not sources:
        raise ValueError("nothing to encode: give a dataset name, a folder or image files")
    c, size, _ = run.model_config.image_shape
    first = sources[0]
    named = first.lower() in available()
    if len(sources) == 1 and (named or Path(first).expanduser().is_dir()):
        own = run.data_info
        if _same_source(first, own.get("name")):
            data_dir = data_dir or own.get("data_dir")
            seed = own.get("seed") or 0
        progress = RichProgress()
        try:
            return load(first, split=split or ("test" if named else None), data_dir=data_dir, size=size,
                        channels=c, seed=seed, n=n, progress=progress)
        finally:
            progress.close()
    if split is not None:
        raise ValueError("--split applies to a dataset or a folder, not to image files")
    return read_image_files([Path(s) for s in sources[:n]], c, size)


def _same_source(source: str, run_source: str | None) -> bool:
    if run_source is None:
        return False
    if source.lower() in available():
        return source.lower() == run_source.lower()
    return Path(source).expanduser().resolve() == Path(run_source)


def read_image_files(paths: list[Path], channels: int, size: int) -> ImageSet:
    """Image files -> ImageSet of uint8 (N, channels, size, size), shorter side scaled and centre cropped."""
    images = []
    for path in paths:
        if not path.is_file():
            raise ValueError(f"{path}: no such image file (expected a dataset name: {', '.join(available())}, "
                             "a folder, or image files)")
        try:
            images.append(decode_image(path, size))
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
            raise ValueError(f"{path}: cannot read this image ({e})") from None
    pixels = convert_channels(np.stack(images), channels)
    return ImageSet(images=pixels, name="images", names=tuple(str(p) for p in paths))


def save_codes(path: Path, z: np.ndarray, source: ImageSet) -> Path:
    """Write the codes file (see module docstring) atomically."""
    if path.suffix != ".npz":
        raise ValueError(f"--out {path}: the codes file must end in .npz")
    arrays: dict[str, np.ndarray] = {"z": np.asarray(z, dtype=np.float32)}
    if source.labels is not None:
        arrays["labels"] = source.labels.astype(np.int64)
        arrays["class_names"] = np.array(source.class_names, dtype=str)
    if source.factors is not None:
        arrays["factors"] = source.factors.astype(np.float32)
        arrays["factor_names"] = np.array(source.factor_names, dtype=str)
    if source.names is not None:
        arrays["names"] = np.array(source.names, dtype=str)
    return write_npz(path, arrays)


def load_codes(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a codes file (``z`` (N, D) float32 and whatever else it holds); a .npy is taken as ``z``."""
    if not path.is_file():
        raise ValueError(f"{path}: no such codes file")
    if path.suffix not in (".npz", ".npy"):
        raise ValueError(f"{path}: expected a codes file ending in .npz (from `latentspace encode`) or .npy")
    try:
        if path.suffix == ".npy":
            arrays = {"z": np.load(path, allow_pickle=False)}
        else:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npz/.npy codes file ({e})") from None
    if "z" not in arrays:
        raise ValueError(f"{path}: has no 'z' array (found {', '.join(arrays) or 'none'}); write it with "
                         "`latentspace encode`")
    z = arrays["z"]
    if z.ndim != 2 or not np.issubdtype(z.dtype, np.number):
        raise ValueError(f"{path}: 'z' must be numbers of shape (N, D), got {z.dtype} {z.shape}")
    arrays["z"] = z.astype(np.float32)
    return arrays


def encode_command(
    run_dir: RunArg,
    sources: Annotated[list[str], typer.Argument(help="A dataset name, an image folder, or image files.")],
    out_path: Annotated[Path, typer.Option("--out", help="Codes file to write (.npz).")] = Path("z.npz"),
    split: Annotated[str | None, typer.Option("--split", help="train or test (default: test for a dataset, "
                                              "all images of a folder).")] = None,
    sample: Annotated[bool, typer.Option("--sample", help="One posterior sample per image instead of "
                                         "the mean.")] = False,
    n: Annotated[int | None, typer.Option("--n", help="Encode at most N images.")] = None,
    seed: SeedOpt = 0,
    data_dir: DataDirOpt = None,
    device: DeviceOpt = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per batch.")] = 1000,
) -> None:
    """Write the latent codes of images to a .npz file (z, plus labels/factors/names when known)."""
    if out_path.suffix != ".npz":
        raise typer.BadParameter(f"the codes file must end in .npz, got {out_path}", param_hint="--out")
    run, model = open_model(run_dir, device)
    images = load_sources(run, sources, split, data_dir, seed, n)
    generator = _generator(model, seed) if sample else None
    progress = RichProgress()
    z = encode_images(model, images.images, batch_size=batch_size, sample=sample, generator=generator,
                      progress=progress)
    save_codes(out_path, z, images)
    what = "posterior samples" if sample else "posterior means"
    out.print(f"wrote {out_path}: z {z.shape[0]} x {z.shape[1]} ({what}) of {len(images)} images from "
              f"{images.name}", markup=False, highlight=False, soft_wrap=True)


def _generator(model: Autoencoder, seed: int) -> torch.Generator:
    device = next(model.parameters()).device
    return torch.Generator(device=device).manual_seed(seed)


def register(app: typer.Typer) -> None:
    app.command("encode")(encode_command)
