"""`latentspace encode`: images (a dataset, a folder or image files) -> their latent codes in a .npz file.

``--out codes.parquet`` writes the same columns as one Parquet table (latent.codes_table). ``--out`` a folder
streams one image folder of any size into shards with bounded memory, and a re-run continues an interrupted
encode (api.stream, latent.shards).

The codes file holds ``z`` (N, D) float32 and, when the source has them, ``labels`` (N,) int64 with
``class_names`` (K,), ``factors`` (N, F) float32 with ``factor_names`` (F,), and ``names`` (N,) (source
names). Strings are fixed-width unicode arrays, so the file loads with allow_pickle=False.
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer
from rich.console import Console

from latentspace.api.common import read_image
from latentspace.api.stream import DEFAULT_SHARD_SIZE, encode_folder
from latentspace.cli.console import RichProgress
from latentspace.data import ImageSet, available, load
from latentspace.latent.codes import encode_images
from latentspace.latent.codes_table import columns_of, read_codes_parquet, require_pyarrow, write_codes_parquet
from latentspace.latent.shards import read_shards
from latentspace.models import Autoencoder
from latentspace.train import Run, open_run
from latentspace.train.zoo import PREFIX, is_zoo_ref, resolve_run, zoo_models
from latentspace.utils.device import channels_last, pick_device
from latentspace.utils.files import write_npz

MAX_CODES_BYTES = 1 << 30  # 1 GiB: 16M codes of 16 dims; far beyond any run, far below a decompression bomb

out = Console()

RunArg = Annotated[Path, typer.Argument(
    help="Run folder written by `latentspace train`, or zoo:NAME for a pretrained one (`latentspace zoo`).",
    callback=lambda value: run_path(value))]


def run_path(value: Path) -> Path:
    """A RUN argument as a folder: a known ``zoo:NAME`` -> the pretrained run's cached copy. An unknown name
    stays as typed for the verb's open_run, whose ValueError is the CLI's one-line error listing the zoo (an
    error raised here would be a boxed usage text)."""
    name = str(value)[len(PREFIX):] if is_zoo_ref(value) else None
    return resolve_run(value) if name in zoo_models() else value
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Folder holding the dataset files "
                                                  "(default: the run's).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for random choices: posterior samples, which images.")]


def open_model(run_dir: Path, device: str) -> tuple[Run, Autoencoder]:
    run = open_run(run_dir)
    return run, channels_last(run.model(pick_device(device)))


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
    for path in paths:
        if not path.is_file():
            raise ValueError(f"{path}: no such image file (expected a dataset name: {', '.join(available())}, "
                             "a folder, or image files)")
    pixels = np.stack([read_image(p, (channels, size, size)) for p in paths])
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
    """The arrays of a codes file (``z`` (N, D) float32 and whatever else it holds): an .npz, a .npy (taken as
    ``z``), a .parquet, or a folder of shards from a streaming encode."""
    if path.is_dir():
        arrays = read_shards(path)
    elif not path.is_file():
        raise ValueError(f"{path}: no such codes file")
    elif path.suffix == ".parquet":
        arrays = read_codes_parquet(path)
    elif path.suffix not in (".npz", ".npy"):
        raise ValueError(f"{path}: expected a codes file ending in .npz (from `latentspace encode`), .npy or "
                         ".parquet, or a folder of shards")
    else:
        try:
            arrays = _read_arrays(path)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError,
                RuntimeError) as e:  # RuntimeError: zipfile's answer to an encrypted entry
            first = (str(e).splitlines() or [type(e).__name__])[0][:200]
            raise ValueError(f"{path}: not a readable .npz/.npy codes file ({first})") from None
    if "z" not in arrays:
        raise ValueError(f"{path}: has no 'z' array (found {', '.join(arrays) or 'none'}); write it with "
                         "`latentspace encode`")
    z = arrays["z"]
    if z.ndim != 2 or min(z.shape) == 0 or not np.issubdtype(z.dtype, np.number) or np.iscomplexobj(z):
        raise ValueError(f"{path}: 'z' must be real numbers of shape (N, D), N, D >= 1, got {z.dtype} {z.shape}")
    z = z.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(z).all(axis=1))
    if len(bad):
        raise ValueError(f"{path}: 'z' row {bad[0]} holds NaN or inf (or a value beyond float32); "
                         f"{len(bad)} row(s) affected")
    arrays["z"] = z
    return arrays


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npy/.npz, refusing (before reading) archives that declare more than the bound."""
    if path.suffix == ".npy":
        if path.stat().st_size > MAX_CODES_BYTES:
            raise ValueError(f"file is over {MAX_CODES_BYTES >> 20} MiB")
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.ndarray):  # np.load looks at the bytes, not the name: this .npy is an archive
            raise ValueError("holds an .npz archive, not one array: name it .npz")
        return {"z": z}
    with zipfile.ZipFile(path) as archive:
        declared = sum(info.file_size for info in archive.infolist())
    if declared > MAX_CODES_BYTES:  # a small zip can expand to gigabytes; the reader honours declared sizes
        raise ValueError(f"archive expands to {declared >> 20} MiB, over the {MAX_CODES_BYTES >> 20} MiB bound")
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def encode_command(
    run_dir: RunArg,
    sources: Annotated[list[str], typer.Argument(help="A dataset name, an image folder, or image files.")],
    out_path: Annotated[Path, typer.Option("--out", help="Codes file to write (.npz, or .parquet with the "
                                           "parquet extra), or a folder: a sharded, resumable encode of one "
                                           "image folder.")] = Path("z.npz"),
    split: Annotated[str | None, typer.Option("--split", help="train or test (default: test for a dataset, "
                                              "all images of a folder).")] = None,
    sample: Annotated[bool, typer.Option("--sample", help="One posterior sample per image instead of "
                                         "the mean.")] = False,
    n: Annotated[int | None, typer.Option("--n", help="Encode at most N images.")] = None,
    seed: SeedOpt = 0,
    data_dir: DataDirOpt = None,
    device: DeviceOpt = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per batch.")] = 1000,
    shard_size: Annotated[int | None, typer.Option("--shard-size", help="Images per shard of a sharded encode "
                                                   f"(--out a folder; default {DEFAULT_SHARD_SIZE:,}).")] = None,
    shard_format: Annotated[str | None, typer.Option("--format", help="Shards of a sharded encode: npy or "
                                                     "parquet (default npy).")] = None,
) -> None:
    """Write the latent codes of images to a .npz or .parquet file (z, plus labels/factors/names when known),
    or stream an image folder of any size into shards (--out a folder; run it again to continue)."""
    if out_path.suffix == "" or out_path.is_dir():
        _encode_sharded(run_dir, sources, out_path, split, data_dir, sample, n, seed, device, batch_size,
                        shard_size or DEFAULT_SHARD_SIZE, shard_format or "npy")
        return
    if out_path.suffix not in (".npz", ".parquet"):
        raise typer.BadParameter(f"the codes file must end in .npz or .parquet (or be a folder for a sharded "
                                 f"encode), got {out_path}", param_hint="--out")
    if shard_size is not None or shard_format is not None:
        raise typer.BadParameter("--shard-size and --format apply to a sharded encode: give --out a folder",
                                 param_hint="--out")
    if out_path.suffix == ".parquet":
        require_pyarrow()  # before the work, not after it
    run, model = open_model(run_dir, device)
    images = load_sources(run, sources, split, data_dir, seed, n)
    generator = _generator(model, seed) if sample else None
    progress = RichProgress()
    z = encode_images(model, images.images, batch_size=batch_size, sample=sample, generator=generator,
                      progress=progress)
    if out_path.suffix == ".parquet":
        write_codes_parquet(out_path, z, **columns_of(images))
    else:
        save_codes(out_path, z, images)
    what = "posterior samples" if sample else "posterior means"
    out.print(f"wrote {out_path}: z {z.shape[0]} x {z.shape[1]} ({what}) of {len(images)} images from "
              f"{images.name}", markup=False, highlight=False, soft_wrap=True)


def _encode_sharded(run_dir: Path, sources: list[str], out_dir: Path, split: str | None, data_dir: Path | None,
                    sample: bool, n: int | None, seed: int, device: str, batch_size: int, shard_size: int,
                    shard_format: str) -> None:
    """`encode RUN FOLDER --out OUT_DIR`: api.stream.encode_folder with a progress bar, then a summary."""
    if len(sources) != 1 or not Path(sources[0]).expanduser().is_dir():
        raise typer.BadParameter(f"a sharded encode (--out {out_dir} is a folder) reads one image folder, got "
                                 f"{' '.join(sources)}", param_hint="SOURCES")
    if split is not None or data_dir is not None:
        raise typer.BadParameter("a sharded encode reads every image of the folder; --split and --data-dir do "
                                 "not apply", param_hint="--split")
    result = encode_folder(run_dir, sources[0], out_dir, shard_size=shard_size, fmt=shard_format,
                           batch_size=batch_size, sample=sample, seed=seed, n=n, device=pick_device(device),
                           progress=RichProgress())
    what = "posterior samples" if sample else "posterior means"
    resumed = f"; {result.n_resumed} were finished by an earlier run" if result.n_resumed else ""
    out.print(f"wrote {out_dir}: {result.n_encoded:,} codes of {result.latent_dim} values ({what}) in "
              f"{result.n_shards} {shard_format} shards{resumed}", markup=False, highlight=False, soft_wrap=True)
    if result.skipped:
        shown = ", ".join(f"{name} ({reason})" for name, reason in result.skipped[:10])
        more = f", and {len(result.skipped) - 10} more" if len(result.skipped) > 10 else ""
        out.print(f"skipped {len(result.skipped)} of {result.n_found:,} files: {shown}{more}", markup=False,
                  highlight=False, soft_wrap=True)


def _generator(model: Autoencoder, seed: int) -> torch.Generator:
    device = next(model.parameters()).device
    return torch.Generator(device=device).manual_seed(seed)


def register(app: typer.Typer) -> None:
    app.command("encode")(encode_command)
