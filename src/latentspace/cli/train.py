"""`latentspace train`: fit a model to a dataset into a run folder (or continue one with --resume)."""
from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import torch
import typer
from rich.console import Console
from rich.table import Table

from latentspace.cli import entry
from latentspace.cli import family_options as fam
from latentspace.cli.console import RichProgress, console
from latentspace.data import ImageSet, available, load
from latentspace.metrics.compression import Baseline, against_pca
from latentspace.models import Autoencoder, ModelConfig, build
from latentspace.models.adversary import DIFFAUG_BELOW, GAN_START, GAN_WIDTH
from latentspace.models.config import MAX_SIZE, MIN_SIZE, likelihood_for_pixels
from latentspace.models.nets import ARCHS, arch_help, default_arch
from latentspace.models.objectives import OBJECTIVES, objective_help
from latentspace.train import TrainConfig, distributed, fit, is_run_folder, open_run
from latentspace.train.budget import (
    MIN_STEPS, SMALL_BATCH, SMALL_DATA, default_batch_size, default_epochs, epochs_for_minutes,
)  # fmt: skip
from latentspace.utils.device import pick_device
from latentspace.utils.lock import LOCK_FILE, FolderLock

out = Console()  # results on stdout; the progress bar is on stderr

# CLI option -> (config, field). None means "not given": the dataclass default (or the run's value) applies.
MODEL_OPTIONS = {"latent_dim": "latent_dim", "beta": "beta", "alpha": "alpha", "gamma": "gamma",
                 "likelihood": "likelihood", "width": "width", "hidden": "hidden", "smallest_side": "smallest_side",
                 "binarize": "binarize", "arch": "arch", "attention": "attention", "ssim": "ssim_weight", "ffl": "ffl_weight",
                 "gan": "gan_weight", "gan_start": "gan_start", "gan_width": "gan_width", **fam.OPTIONS}
TRAIN_OPTIONS = {"epochs": "epochs", "batch_size": "batch_size", "lr": "lr", "seed": "seed", "hflip": "hflip",
                 "early_stop": "early_stop", "minutes": "minutes", "precision": "precision"}
DATA_OPTIONS = {"data": "name", "size": "size", "channels": "channels", "data_dir": "data_dir", "n": "n",
                "data_seed": "seed"}


def _opt(kind, flag: str, text: str):
    return Annotated[kind | None, typer.Option(flag, help=text)]


def _switch(name: str, text: str):
    return Annotated[bool | None, typer.Option(f"--{name}/--no-{name}", help=text)]


DataOpt = _opt(str, "--data", f"{', '.join(available())} or an image folder (default mnist).")
ModelOpt = _opt(str, "--model", f"Objective (default vae). {objective_help()}.")
ArchOpt = _opt(str, "--arch", f"Encoder/decoder family (default {default_arch(64)}, the most quality per "
               f"CPU-minute measured at the default budgets). {arch_help()}.")
AttentionOpt = _switch("attention", "Self-attention at the lowest resolution (resnet only). Default off.")
SsimOpt = _opt(float, "--ssim", "Weight of a 1 - SSIM term added to the training loss (not to the ELBO); "
               "per pixel, on the reconstruction NLL's scale. Default 0 (off).")
FflOpt = _opt(float, "--ffl", "Weight of a focal frequency loss term added to the training loss (not to the "
              "ELBO). Default 0 (off).")
GanOpt = _opt(float, "--gan", "Weight of a PatchGAN adversary on the reconstructions (hinge loss, scaled to the "
              "reconstruction loss's gradient at the decoder's last layer; DiffAugment below "
              f"{DIFFAUG_BELOW:,} training images). Default 0 (off).")
GanStartOpt = _opt(int, "--gan-start", f"Optimiser steps before the adversary joins (default {GAN_START}).")
GanWidthOpt = _opt(int, "--gan-width", f"Channels of the discriminator's first layer (default {GAN_WIDTH}).")
LatentOpt = _opt(int, "--latent-dim", f"Size of the latent code (default {ModelConfig.latent_dim}).")
EpochsOpt = _opt(int, "--epochs", f"Passes over the train split (default {TrainConfig.epochs}, or more for small "
                 f"data: at least {MIN_STEPS:,} optimiser steps).")
BetaOpt = _opt(float, "--beta", f"beta-vae KL weight; beta-tcvae / factor-vae total-correlation weight (default "
               f"{ModelConfig.beta:g}).")
AlphaOpt = _opt(float, "--alpha", f"beta-tcvae mutual-information weight (default {ModelConfig.alpha:g}).")
GammaOpt = _opt(float, "--gamma", f"beta-tcvae dimension-wise KL weight (default {ModelConfig.gamma:g}).")
LikelihoodOpt = _opt(str, "--likelihood", "bernoulli or gaussian (default: bernoulli for near-binary grey images "
                     "such as digits, gaussian with a learned sigma for photos and RGB).")
BatchOpt = _opt(int, "--batch-size", f"Images per step, shared by all processes under torchrun "
                f"(default {TrainConfig.batch_size}; {SMALL_BATCH} below {SMALL_DATA:,} training images or for RGB "
                "images of 64 px and larger).")
HflipOpt = _switch("hflip", "Mirror a random half of every batch (augmentation for faces and photos; not for "
                   "digits or text). Default off.")
EarlyStopOpt = _opt(int, "--early-stop", "Stop once the test ELBO has not improved for this many epochs (default "
                    "off).")
MinutesOpt = _opt(float, "--minutes", "Train for about this many minutes instead of a number of epochs: the "
                  "epochs are chosen before training from the measured speed of a few steps on this machine "
                  "(and then fixed, so --resume is exact).")
WidthOpt = _opt(int, "--width", "Channels of the first stage (default: plain 16, or 32 for RGB images of 64 px "
                "and larger; resnet 32).")
HiddenOpt = _opt(int, "--hidden", f"Width of the fully connected layers (default {ModelConfig.hidden}; 0 = none).")
SmallestOpt = _opt(int, "--smallest-side", "Stride-2 stages halve the image until its side is at most this; the "
                   "dense layers read that map (default: plain 7, resnet 4). 16 gives sharper reconstructions "
                   "per CPU-second and less realistic interpolations (README, Choosing the network).")
BinarizeOpt = _switch("binarize", "Dynamic binarisation: every step trains on a fresh Bernoulli draw of each "
                      "pixel (the MNIST density protocol; needs the bernoulli likelihood). Default off.")
LrOpt = _opt(float, "--lr", f"Peak learning rate of AdamW (default {TrainConfig.lr:g}).")
SeedOpt = _opt(int, "--seed", f"Seed for weights, order, noise and data (default {TrainConfig.seed}).")
SizeOpt = _opt(int, "--size", "Resize images to SIZE x SIZE.")
ChannelsOpt = _opt(int, "--channels", "1 (grey) or 3 (RGB).")
DataDirOpt = _opt(Path, "--data-dir", "Folder holding the dataset files.")
NOpt = _opt(int, "--n", "Use at most N images of each split.")
DataSeedOpt = _opt(int, "--data-seed", "Seed of the data alone (which N images, generated sets); default --seed. "
                   "Runs that differ only in --seed see the same images with this fixed (as `sweep` does).")
ThreadsOpt = _opt(int, "--threads", "CPU threads for torch.")
PrecisionOpt = _opt(str, "--precision", "auto, fp32 or bf16: the precision of training's forward and backward "
                    "passes (weights and optimiser stay fp32). auto (default): bf16 where the device runs it "
                    "natively (GPUs; CPUs with AVX512-BF16 or AMX: 15 instead of 18 ms per MNIST step on 2 cores), else fp32.")


def train_command(
    out_dir: Annotated[Path, typer.Option("--out", help="Run folder to create (or continue with --resume).")],
    data: DataOpt = None, model: ModelOpt = None, latent_dim: LatentOpt = None, epochs: EpochsOpt = None,
    beta: BetaOpt = None, alpha: AlphaOpt = None, gamma: GammaOpt = None, likelihood: LikelihoodOpt = None,
    batch_size: BatchOpt = None, lr: LrOpt = None, seed: SeedOpt = None, size: SizeOpt = None,
    channels: ChannelsOpt = None, data_dir: DataDirOpt = None, n: NOpt = None, data_seed: DataSeedOpt = None,
    hflip: HflipOpt = None,
    early_stop: EarlyStopOpt = None, minutes: MinutesOpt = None, width: WidthOpt = None, hidden: HiddenOpt = None,
    smallest_side: SmallestOpt = None, binarize: BinarizeOpt = None, precision: PrecisionOpt = None, arch: ArchOpt = None,
    attention: AttentionOpt = None, ssim: SsimOpt = None, ffl: FflOpt = None, gan: GanOpt = None,
    gan_start: GanStartOpt = None, gan_width: GanWidthOpt = None, k: fam.KOpt = None,
    pseudo_inputs: fam.PseudoInputsOpt = None, mmd_weight: fam.MmdWeightOpt = None, dip_weight: fam.DipWeightOpt = None,
    codebook: fam.CodebookOpt = None, code_dim: fam.CodeDimOpt = None, commitment: fam.CommitmentOpt = None,
    layers: fam.LayersOpt = None, free_bits: fam.FreeBitsOpt = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the encoder and decoder.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its checkpoint.")] = False,
    threads: ThreadsOpt = None,
) -> None:
    """Train an autoencoder on a dataset; the run folder then feeds every other command."""
    given = {k: v for k, v in locals().items() if v is not None}
    _check_options(given)
    with _claimed(out_dir, resume):
        _train(out_dir, given, resume, device, compile, threads)


def _train(out_dir: Path, given: dict[str, Any], resume: bool, device: str, compile: bool,
           threads: int | None) -> None:
    run_config = _resumed_config(out_dir, given) if resume else None
    base = TrainConfig.from_dict(run_config["train"]) if run_config else TrainConfig()
    train_config = base.with_changes(  # validated before the data is loaded
        **{field: given[opt] for opt, field in TRAIN_OPTIONS.items() if opt in given},
        compile=compile, threads=threads,
    )
    dev = distributed.join(pick_device(device))  # under torchrun: this rank's device, in the process group
    if not distributed.current().is_main:  # rank 0 alone talks to the terminal
        out.quiet = console.quiet = True
    if threads is not None:
        torch.set_num_threads(threads)
    data_info = (run_config["data"] or {}) if run_config else _data_info(given)
    if not data_info.get("name"):
        raise ValueError(f"{out_dir / 'config.json'}: has no 'data' entry naming the images it was trained on")
    train_set, test_set = (_load(data_info, split) for split in ("train", "test"))
    if run_config:
        model_config = ModelConfig.from_dict(run_config["model"])
    else:
        model_config = _model_config(given, train_set)
        train_config = _sized_to_data(train_config, given, len(train_set), train_set.shape)
    net = _seeded_build(model_config, train_config.seed)
    if "minutes" in given and not run_config:
        epochs = epochs_for_minutes(given["minutes"], net, train_set, test_set, train_config, dev)
        epochs = int(distributed.gather(torch.tensor(epochs), distributed.current())[0])  # every rank: rank 0's
        train_config = train_config.with_changes(epochs=epochs)
    _describe(model_config, train_config, train_set, test_set, dev, out_dir, resume)
    progress = RichProgress()
    started = time.perf_counter()
    try:
        result = fit(net, train_set, test_set, train_config, out_dir, dev, progress=progress, resume=resume,
                     data_info=data_info)
    except KeyboardInterrupt:
        progress.close()
        out.print(f"interrupted; continue with: latentspace train --resume --out {out_dir}", markup=False,
                  highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    baseline = against_pca(net, train_set, test_set) if distributed.current().is_main else None
    out.print(_final_table(result.final, time.perf_counter() - started, result.epochs, baseline))
    if baseline is not None:
        out.print(baseline.verdict(), markup=False, highlight=False, soft_wrap=True)
    out.print(f"run folder: {out_dir}", markup=False, highlight=False, soft_wrap=True)
    distributed.leave()  # under torchrun: every rank is done, leave the process group together


def _check_options(given: dict[str, Any]) -> None:
    """Refuse option values no run can use before anything is read or written."""
    if given.get("model") is not None and given["model"] not in OBJECTIVES:
        raise ValueError(f"--model {given['model']}: expected one of {', '.join(OBJECTIVES)}")
    fam.check_family_options(given)
    if given.get("arch") is not None and given["arch"] not in ARCHS:
        raise ValueError(f"--arch {given['arch']}: expected one of {', '.join(ARCHS)}")
    for flag in ("beta", "alpha", "gamma", "lr", "ssim", "ffl", "gan"):
        value = given.get(flag)
        if value is not None and not math.isfinite(value):
            raise ValueError(f"--{flag} {value}: expected a finite number")
    for flag in ("gan_start", "gan_width"):
        if given.get(flag) is not None and not given.get("gan"):
            raise ValueError(f"--{flag.replace('_', '-')} sets up the adversary: give --gan W (> 0) too")
    most = max(4 * (os.cpu_count() or 1), 64)
    if given.get("threads") is not None and not 1 <= given["threads"] <= most:
        raise ValueError(f"--threads {given['threads']}: expected 1..{most} (this machine has {os.cpu_count()} CPUs)")
    if given.get("minutes") is not None and given.get("epochs") is not None:
        raise ValueError("--minutes and --epochs both set the length of the run; give one")
    if given.get("minutes") is not None and not (math.isfinite(given["minutes"]) and given["minutes"] > 0):
        raise ValueError(f"--minutes {given['minutes']}: expected a positive number of minutes")
    if given.get("size") is not None and not MIN_SIZE <= given["size"] <= MAX_SIZE:
        raise ValueError(f"--size {given['size']}: expected {MIN_SIZE}..{MAX_SIZE} pixels")


@contextmanager
def _claimed(out_dir: Path, resume: bool) -> Iterator[None]:
    """Hold the run folder's lock (one writer at a time) around the whole command. A fresh folder this
    command created is removed again if the command fails before writing anything into it."""
    if resume:
        open_run(out_dir)  # a folder that is no run gets that message, and no lock file
    else:
        _check_fresh_folder(out_dir)
    created = not out_dir.exists()
    lock = FolderLock(out_dir, "latentspace train") if is_main_process() else None
    if lock is not None:
        lock.acquire()
    try:
        if not resume:
            _check_fresh_folder(out_dir)  # again: another writer may have finished between the check and the lock
        yield
    except BaseException:
        if created and {p.name for p in out_dir.iterdir()} <= {LOCK_FILE}:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finally:
        if lock is not None:
            lock.release()


def is_main_process() -> bool:
    """Rank 0 of a torchrun launch, or a plain process: the one that writes the run folder."""
    return int(os.environ.get("RANK", "0")) == 0


def _check_fresh_folder(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is a file, expected a folder for the run")
    if out_dir.is_dir() and any(p.name != LOCK_FILE for p in out_dir.iterdir()):
        what = "holds a run" if is_run_folder(out_dir) else "is not empty"
        raise ValueError(f"--out {out_dir} {what}; pass --resume to continue it, or choose another --out")


def _resumed_config(out_dir: Path, given: dict[str, Any]) -> dict[str, Any]:
    """The run's saved config; model/data/trajectory options may only repeat what it holds."""
    run = open_run(out_dir)
    config = run.config
    saved = {**{o: config["model"].get(f) for o, f in MODEL_OPTIONS.items()},
             **{o: run.data_info.get(f) for o, f in DATA_OPTIONS.items()},
             **{o: config["train"].get(f) for o, f in TRAIN_OPTIONS.items()},
             "model": config["model"].get("objective")}
    for option, value in given.items():
        if option in saved and option != "epochs" and _differs(option, value, saved[option]):
            flag = "--" + option.replace("_", "-")
            raise ValueError(f"{flag} {value} differs from the run's {saved[option]!r}; a resumed run keeps its "
                             "settings (only --epochs, --device, --threads and --compile may change)")
    return config


def _differs(option: str, given: Any, saved: Any) -> bool:
    if isinstance(given, Path) or (option == "data" and Path(given).expanduser().is_dir()):
        return saved is None or Path(given).expanduser().resolve() != Path(saved)
    return given != saved


def _data_info(given: dict[str, Any]) -> dict[str, Any]:
    name = given.get("data", "mnist")
    folder = Path(name).expanduser()
    if name.lower() not in available() and folder.is_dir():
        name = str(folder.resolve())  # the run must find its folder from anywhere
    data_dir = given.get("data_dir")
    return {"name": name, "size": given.get("size"), "channels": given.get("channels"),
            "data_dir": str(data_dir.expanduser().resolve()) if data_dir else None,
            "seed": given.get("data_seed", given.get("seed", TrainConfig.seed)), "n": given.get("n")}


def _load(info: dict[str, Any], split: str) -> ImageSet:
    progress = RichProgress()
    try:
        return load(info["name"], split=split, data_dir=info.get("data_dir"), size=info.get("size"),
                    channels=info.get("channels"), seed=info.get("seed") or 0, n=info.get("n"), progress=progress)
    finally:
        progress.close()


def _sized_to_data(config: TrainConfig, given: dict[str, Any], n_train: int, image_shape) -> TrainConfig:
    """Batch size and epochs the user left unset follow the data (train.budget): small sets and large images
    get more steps."""
    batch = given.get("batch_size") or default_batch_size(n_train, image_shape)
    epochs = given.get("epochs") or default_epochs(n_train, batch)
    return config.with_changes(batch_size=batch, epochs=epochs)


def _model_config(given: dict[str, Any], train_set: ImageSet) -> ModelConfig:
    fields = {f: given[o] for o, f in MODEL_OPTIONS.items() if o in given}
    fields.setdefault("likelihood", likelihood_for_pixels(train_set.images))
    return ModelConfig(image_shape=train_set.shape, objective=given.get("model", "vae"), **fields)


def _seeded_build(config: ModelConfig, seed: int) -> Autoencoder:
    """The initial weights follow the run's seed without leaving the global RNG changed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build(config)


def _describe(mc: ModelConfig, tc: TrainConfig, train_set: ImageSet, test_set: ImageSet, device, out_dir: Path,
              resume: bool) -> None:
    shape = "x".join(map(str, mc.image_shape))
    verb = "resuming" if resume else "training"
    out.print(f"{verb} {mc.objective} ({mc.arch} width {mc.width}, latent {mc.latent_dim}, {mc.likelihood}) on "
              f"{train_set.name}: "
              f"{len(train_set):,} train / {len(test_set):,} test images of {shape}, {tc.epochs} epochs"
              f"{f' (about {tc.minutes:g} minutes here)' if tc.minutes else ''}, "
              f"batch {tc.batch_size}, lr {tc.lr:g}, device {device} -> {out_dir}",
              markup=False, highlight=False, soft_wrap=True)
    if device.type == "cpu":
        why = entry.PLAN.why if entry.PLAN is not None and tc.threads is None else "--threads"
        out.print(f"cpu threads: {torch.get_num_threads()} ({why})", markup=False, highlight=False, soft_wrap=True)


STANDARD = {"test_loss", "test_elbo", "test_recon_nll", "test_kl"}  # test_* keys every family logs


def _final_table(final: dict[str, Any] | None, wall_s: float, epochs: int, baseline: Baseline | None) -> Table:
    table = Table(title=f"after {epochs} epochs")
    table.add_column("measure")
    table.add_column("value", justify="right")
    if final is not None:
        table.add_row("test ELBO (nats/image, higher is better)", f"{final['test_elbo']:.2f}")
        table.add_row("  reconstruction NLL", f"{final['test_recon_nll']:.2f}")
        table.add_row("  KL", f"{final['test_kl']:.2f}")
        for key in sorted(k for k in final if k.startswith("test_") and k not in STANDARD):
            table.add_row(f"  {key.removeprefix('test_').replace('_', ' ')} (the family's own term)", f"{final[key]:.3g}")
        table.add_row("train images/s (last epoch)", f"{final['images_per_s']:,.0f}")
    if baseline is not None:
        table.add_row(f"test MSE per pixel ({baseline.n_test:,} images): model", f"{baseline.model_mse:.5f}")
        table.add_row(f"  PCA, {baseline.components} components (same train split)", f"{baseline.pca_mse:.5f}")
        table.add_row("  mean image", f"{baseline.mean_mse:.5f}")
    table.add_row("wall time", f"{wall_s:.1f} s")
    return table


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
