"""The training loop: fit, with exact resume from any step, on one process or several (torchrun).

The whole train split sits on the device as one uint8 tensor; each epoch visits it in a permutation drawn
from a generator seeded by (seed, epoch), in index slices of ``batch_size`` (the last one may be smaller).
The learning rate and KL weight are plain functions of the global step (train.schedule), and the
reparameterisation noise comes from one generator per process whose state is checkpointed, so a run resumed
at step k replays exactly the steps an uninterrupted run would have taken. On several processes every rank
trains on its share of each batch and rank 0 alone writes the run folder (train.distributed).
"""
from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentspace.data import ImageSet
from latentspace.data.transforms import batch_rows, to_float
from latentspace.models import Autoencoder, save_model
from latentspace.train import distributed
from latentspace.train import run as runs
from latentspace.train.config import TrainConfig
from latentspace.train.distributed import World
from latentspace.train.ledger import (
    Health,
    Position,
    StepLog,
    Ticker,
    TrainingDiverged,
    epoch_means,
    weights_problem,
)
from latentspace.train.resume import load_checkpoint, refuse_taken, rewind_folder, start_folder, write_checkpoint
from latentspace.train.schedule import epoch_permutation, kl_weight_at, lr_at, mirrored, probe_index
from latentspace.train.step import (
    EvalResult,
    evaluate,
    make_optimizer,
    posterior_means,
    train_step,
)
from latentspace.utils.device import channels_last, train_autocast_dtype
from latentspace.utils.memory import PageWindow
from latentspace.utils.progress import NULL_PROGRESS, Progress

# The loop's parts used to live in this module and callers import them from here, hence the re-exports.
__all__ = ["fit", "FitResult", "TrainingDiverged", "train_step", "evaluate", "EvalResult", "posterior_means",
           "lr_at", "kl_weight_at", "epoch_permutation", "probe_index"]

logger = logging.getLogger(__name__)

PROGRESS_EVERY_STEPS = 20  # also how often the losses are read back and checked (a sync, see train.ledger)
PROGRESS_EVERY_S = 0.25
EVAL_SEED_OFFSET = 1  # evaluation noise: its own stream, the same every epoch


@dataclass(frozen=True)
class FitResult:
    """What a call to fit did. history: every metrics record of the run so far (one per epoch)."""

    run_dir: Path
    epochs: int
    global_step: int
    history: tuple[dict[str, Any], ...]
    seconds: float

    @property
    def final(self) -> dict[str, Any] | None:
        return self.history[-1] if self.history else None


class _StoppedTogether(KeyboardInterrupt):
    """Ctrl-C on several processes, honoured by every rank after the same step (so a checkpoint can be written)."""


def fit(
    model: Autoencoder,
    train_set: ImageSet,
    test_set: ImageSet,
    config: TrainConfig,
    run_dir: str | Path,
    device: str | torch.device,
    progress: Progress = NULL_PROGRESS,
    resume: bool = False,
    data_info: dict[str, Any] | None = None,
) -> FitResult:
    """Train ``model`` on ``train_set``, evaluating on ``test_set`` after every epoch, writing the run folder.

    resume=True continues the run in ``run_dir`` from its checkpoint: ``config`` may raise ``epochs``
    (the schedule then spans the new total) but must keep every field in resume.TRAJECTORY_FIELDS. A run resumed
    with the same config ends with exactly the weights of an uninterrupted one. KeyboardInterrupt (Ctrl-C)
    writes a checkpoint of the exact position and is re-raised. The model is moved to ``device``.

    A NaN or infinite loss, gradient norm or weight stops training with TrainingDiverged (a ValueError)
    before anything is written from the diverged model; the last checkpoint stays as it was.

    Under torchrun (a default process group of several ranks, see distributed.join), every rank calls fit
    with the same arguments and its own device; ``config.batch_size`` is the global batch.
    """
    started = time.perf_counter()
    run_dir, device = Path(run_dir), torch.device(device)
    world = distributed.current()
    progress = progress if world.is_main else NULL_PROGRESS
    _check_data(model, train_set, test_set)
    distributed.check_batch(config.batch_size, world)
    channels_last(model.to(device)).train()
    train_images = torch.from_numpy(train_set.images).to(device)
    test_images = torch.from_numpy(test_set.images).to(device)
    n_train = len(train_set)
    steps_per_epoch = math.ceil(n_train / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    optimizer = make_optimizer(model, config.lr, config.weight_decay, device)
    reparam = torch.Generator(device=device).manual_seed(distributed.noise_seed(config.seed, world))
    probe = probe_index(len(test_set), config.probe_size, config.seed)
    if resume and data_info is None:
        data_info = runs.open_run(run_dir).data_info
    if resume:
        pos = load_checkpoint(model, optimizer, reparam, config, run_dir, world)
    else:
        refuse_taken(run_dir)
        pos = None
    distributed.barrier(world)  # every rank has read the folder before rank 0 changes it
    snapshots: dict[str, np.ndarray] = {}
    if world.is_main:
        snapshots = (start_folder(model, train_set, test_set, config, run_dir, data_info, probe) if pos is None
                     else rewind_folder(model, config, run_dir, data_info, pos.epoch))
    if pos is None:
        # Step 0 is a checkpoint too: from here on the folder always holds one, so a missing trainer state can
        # only mean a lost file (refused on --resume), never a kill -9 before the first epoch's checkpoint.
        noise_states = distributed.gather(reparam.get_state(), world)
        if world.is_main:
            write_checkpoint(run_dir, model, optimizer, noise_states, reparam, Position())
    pos = pos or Position()
    last_saved = pos.describe()  # named in the message if training diverges
    if config.compile:
        for child in model.children():
            child.compile()  # in place: state_dict keys stay as they are
    step_model = distributed.DataParallelLoss(model, device) if world.is_distributed else model
    amp = train_autocast_dtype(device, config.precision)
    ticker = Ticker(progress, PROGRESS_EVERY_STEPS, PROGRESS_EVERY_S)
    # A memory-mapped train split (an image folder's cache) is read in place; this keeps what an epoch has read
    # from staying resident, so memory does not grow with the folder (no-op for arrays in RAM or on a GPU).
    pages = PageWindow(train_set.images if train_images.device.type == "cpu" else None)
    image_bytes = int(np.prod(train_set.shape))
    every = PROGRESS_EVERY_STEPS

    def check(health: Health) -> None:
        if health.bad_step is not None:
            epoch = (health.bad_step - 1) // steps_per_epoch + 1
            raise TrainingDiverged(_diverged(health.bad_step, epoch, health.problem, run_dir, last_saved))
        if health.interrupted:
            raise _StoppedTogether

    # Whether model, optimiser, generator and pos agree; False only while a step is being applied.
    consistent, log, epoch_start = True, None, time.perf_counter()
    progress.start(max(0, total_steps - pos.global_step), "training")
    try:
        with _deferred_sigint() as interrupted:
            # One process stops before any step; several agree at a sync, so that all stop after the same step.
            asks_stop = (lambda: interrupted.is_set()) if world.is_distributed else (lambda: False)
            for epoch in range(pos.epoch, config.epochs):
                order = epoch_permutation(n_train, config.seed, epoch).to(device)
                log = StepLog(pos.batches, world, device)
                epoch_start = time.perf_counter() - pos.train_seconds
                ticker.restart_clock()
                for i in range(pos.step_in_epoch, steps_per_epoch):
                    if interrupted.is_set() and not world.is_distributed:
                        raise KeyboardInterrupt
                    batch = order[i * config.batch_size : (i + 1) * config.batch_size]
                    rows, own, scale = distributed.shard(batch, world)
                    x = to_float(train_images[rows])
                    pages.touched(len(rows) * image_bytes)
                    if config.hflip:
                        x = mirrored(x, rows, config.seed, pos.global_step)
                    lr = lr_at(pos.global_step, total_steps, config)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    consistent = False
                    out = train_step(
                        step_model, optimizer, x, generator=reparam,
                        kl_weight=kl_weight_at(pos.global_step, steps_per_epoch, config),
                        dataset_size=n_train, grad_clip=config.grad_clip, amp_dtype=amp, loss_scale=scale,
                    )
                    pos.global_step, pos.step_in_epoch = pos.global_step + 1, i + 1
                    consistent = True
                    log.add(pos.global_step, out, own)
                    reported = ticker.step(len(batch), out.losses.loss)
                    # A report has waited for the device anyway; several ranks sync on the step count alone.
                    if pos.global_step % every == 0 or (reported and not world.is_distributed):
                        check(log.sync(asks_stop()))
                ticker.flush()
                pages.release()  # what the epoch read leaves memory before evaluation allocates its own
                check(log.sync(asks_stop()))
                problem = weights_problem(model)  # a finite last step can still leave non-finite weights
                if problem is not None:
                    raise TrainingDiverged(_diverged(pos.global_step, epoch + 1, problem, run_dir, last_saved))
                pos.batches, log = log.values(), None
                pos.train_seconds = time.perf_counter() - epoch_start
                noise_states = distributed.gather(reparam.get_state(), world)
                if world.is_main:
                    record = _end_epoch(model, test_images, test_set, config, run_dir, probe, snapshots, pos,
                                        total_steps, steps_per_epoch)
                    logger.info("epoch %d: test elbo %.2f nats", record["epoch"], record["test_elbo"])
                pos = Position(epoch=epoch + 1, global_step=pos.global_step)
                if world.is_main:
                    write_checkpoint(run_dir, model, optimizer, noise_states, reparam, pos, weights_saved=True)
                last_saved = pos.describe()
                distributed.barrier(world)  # the others wait while rank 0 evaluates and writes
                if config.early_stop and _agree(world.is_main and _stalled(run_dir, config.early_stop), world, device):
                    logger.info("test ELBO has not improved for %d epochs: stopping early", config.early_stop)
                    break
    except KeyboardInterrupt as stop:
        if not consistent or (world.is_distributed and not isinstance(stop, _StoppedTogether)):
            if world.is_main:
                logger.warning("interrupted inside a step: no checkpoint written; the last one stays in %s", run_dir)
            raise
        _checkpoint_on_interrupt(run_dir, model, optimizer, reparam, pos, log, epoch_start, world)
        raise
    finally:
        progress.close()
        model.to(memory_format=torch.contiguous_format)  # back to the layout every built or loaded model has
    distributed.barrier(world)  # rank 0 has written all that the others read back below
    history = tuple(runs.read_metrics(run_dir))
    return FitResult(run_dir, pos.epoch, pos.global_step, history, time.perf_counter() - started)


def _checkpoint_on_interrupt(run_dir, model, optimizer, reparam, pos: Position, log: StepLog | None,
                             epoch_start: float, world: World) -> None:
    """Write the exact position after a Ctrl-C between steps, unless what would be saved is not finite."""
    if log is not None:  # inside an epoch: keep its losses so far and its clock
        health = log.sync() if log.pending else Health()  # several ranks stopped at a sync: nothing pending
        if health.bad_step is not None:
            logger.warning("interrupted after step %d diverged (%s): no checkpoint written", health.bad_step,
                           health.problem)
            return
        pos.batches, pos.train_seconds = log.values(), time.perf_counter() - epoch_start
    problem = weights_problem(model)
    if problem is not None:
        logger.warning("interrupted with diverged weights (%s): no checkpoint written", problem)
        return
    noise_states = distributed.gather(reparam.get_state(), world)
    if world.is_main:
        write_checkpoint(run_dir, model, optimizer, noise_states, reparam, pos)
        logger.info("interrupted at epoch %d step %d; checkpoint in %s", pos.epoch + 1, pos.step_in_epoch, run_dir)


def _stalled(run_dir: Path, patience: int) -> bool:
    """Whether the test ELBO's best epoch lies ``patience`` or more epochs back (read from metrics.jsonl, so a
    resumed run decides as the uninterrupted one did)."""
    elbos = [r["test_elbo"] for r in runs.read_metrics(run_dir)]
    return bool(elbos) and len(elbos) - 1 - int(np.argmax(elbos)) >= patience


def _agree(flag: bool, world: World, device: torch.device) -> bool:
    """Rank 0's decision, known to every rank."""
    return bool(distributed.all_sum(torch.tensor([float(flag)], device=device), world).item() > 0)


def _diverged(step: int, epoch: int, problem: str, run_dir: Path, last_saved: str | None) -> str:
    kept = (f"the last good checkpoint ({last_saved}) is intact in {run_dir}" if last_saved is not None
            else f"no checkpoint was written in {run_dir} yet")
    return f"step {step} (epoch {epoch}): {problem}; stopped, {kept}; lower --lr or --beta"


def _end_epoch(model, test_images, test_set, config, run_dir, probe, snapshots, pos, total_steps,
               steps_per_epoch) -> dict[str, Any]:
    """Evaluate, store the probe codes and the metrics record, save the weights; returns the record."""
    device = test_images.device
    eval_gen = torch.Generator(device=device).manual_seed(config.seed + EVAL_SEED_OFFSET)
    batch = batch_rows(test_images.shape[1:], config.eval_batch_size)
    ev = evaluate(model, test_images, batch, generator=eval_gen)
    epoch = pos.epoch + 1
    if len(probe):
        probe_t = torch.from_numpy(probe).to(device)
        snapshots[runs.snapshot_key(epoch)] = posterior_means(model, test_images[probe_t], batch)
        runs.write_snapshots(run_dir / runs.SNAPSHOTS, snapshots)
    train_loss, train_elbo, count = epoch_means(pos.batches)
    record = {
        "epoch": epoch,
        "step": pos.global_step,
        "train_loss": train_loss,
        "train_elbo": train_elbo,
        "test_loss": ev.loss,
        "test_elbo": ev.elbo,
        "test_recon_nll": ev.recon_nll,
        "test_kl": ev.kl,
        **{f"test_{k}": v for k, v in ev.terms.items()},
        "lr": lr_at(max(0, pos.global_step - 1), total_steps, config),
        "kl_weight": kl_weight_at(max(0, pos.global_step - 1), steps_per_epoch, config),
        "images_per_s": count / max(pos.train_seconds, 1e-9),
        "seconds": pos.train_seconds,
        "eval_seconds": ev.seconds,
    }
    runs.append_metrics(run_dir, record)
    save_model(model, run_dir)
    return record


def _check_data(model: Autoencoder, train_set: ImageSet, test_set: ImageSet) -> None:
    expected = tuple(model.config.image_shape)
    for s in (train_set, test_set):
        if s.shape != expected:
            raise ValueError(f"{s.name} ({s.split or 'all'}) images are {s.shape}, the model expects {expected}")
        if len(s) == 0:
            raise ValueError(f"{s.name} ({s.split or 'all'}) has no images")


@contextlib.contextmanager
def _deferred_sigint() -> Iterator[threading.Event]:
    """The first Ctrl-C only sets the event, which the loop checks between steps, so the checkpoint it then
    writes is never of a half-applied optimiser step; a second Ctrl-C interrupts at once."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if event.is_set():
            signal.default_int_handler(signum, frame)
        event.set()

    signal.signal(signal.SIGINT, handler)
    try:
        yield event
    finally:
        signal.signal(signal.SIGINT, previous)
