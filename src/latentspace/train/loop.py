"""The training loop: train_step, evaluate and fit, with exact resume from any step.

The whole train split sits on the device as one uint8 tensor; each epoch visits it in a permutation drawn
from a generator seeded by (seed, epoch), in index slices of ``batch_size`` (the last one may be smaller).
The learning rate and KL weight are plain functions of the global step, and the reparameterisation noise
comes from one generator whose state is checkpointed, so a run resumed at step k replays exactly the
steps an uninterrupted run would have taken.
"""
from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentspace.data import ImageSet
from latentspace.data.transforms import to_float
from latentspace.models import Autoencoder, LossOutput, save_model
from latentspace.train import run as runs
from latentspace.train.checkpoint import TrainerState, load_trainer_state, save_trainer_state
from latentspace.train.config import FINAL_LR_FRACTION, TrainConfig
from latentspace.utils.device import autocast_dtype
from latentspace.utils.progress import NULL_PROGRESS, Progress

logger = logging.getLogger(__name__)

PROGRESS_EVERY_STEPS = 20
PROGRESS_EVERY_S = 0.25
EVAL_SEED_OFFSET = 1  # evaluation noise: its own stream, the same every epoch
# Fields a resume must keep: they shape the trajectory or the probe set (epochs may grow; the rest is speed).
TRAJECTORY_FIELDS = ("batch_size", "lr", "weight_decay", "warmup_steps", "kl_warmup_epochs", "grad_clip", "seed",
                     "probe_size")


# -- schedules --------------------------------------------------------------------------------------


def lr_at(step: int, total_steps: int, config: TrainConfig) -> float:
    """Learning rate for global ``step`` (0-based): linear warm-up over warmup_steps, then cosine decay from
    lr to lr * FINAL_LR_FRACTION, reached at ``total_steps``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps))
    floor = config.lr * FINAL_LR_FRACTION
    return floor + (config.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def kl_weight_at(step: int, steps_per_epoch: int, config: TrainConfig) -> float:
    """KL weight in [0, 1] for global ``step``: rises linearly over kl_warmup_epochs (1 throughout when 0)."""
    if config.kl_warmup_epochs <= 0:
        return 1.0
    return min(1.0, step / (config.kl_warmup_epochs * steps_per_epoch))


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The visiting order of epoch ``epoch`` (0-based): (n,) int64 on the CPU, the same on every machine."""
    generator = torch.Generator().manual_seed(seed * 100003 + epoch)
    return torch.randperm(n, generator=generator)


def probe_index(n_test: int, probe_size: int, seed: int) -> np.ndarray:
    """Sorted indices (P,) int64 of the test images whose codes are stored after every epoch."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_test, size=min(probe_size, n_test), replace=False)).astype(np.int64)


# -- one step, one evaluation -----------------------------------------------------------------------


def train_step(
    model: Autoencoder,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    kl_weight: float = 1.0,
    dataset_size: int | None = None,
    grad_clip: float = 0.0,
    amp_dtype: torch.dtype | None = None,
) -> LossOutput:
    """One optimiser step on x (B, C, H, W) float in [0, 1]; returns the batch's losses (still on device)."""
    optimizer.zero_grad(set_to_none=True)
    with _autocast(x.device, amp_dtype):
        out = model.loss(x, generator=generator, kl_weight=kl_weight, dataset_size=dataset_size)
    out.loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return out


@dataclass(frozen=True)
class EvalResult:
    """Means over the evaluated images, nats per image (elbo: higher is better)."""

    loss: float
    recon_nll: float
    kl: float
    elbo: float
    terms: dict[str, float] = field(default_factory=dict)
    n: int = 0
    seconds: float = 0.0


def evaluate(
    model: Autoencoder,
    images_uint8: torch.Tensor | np.ndarray,
    batch_size: int,
    generator: torch.Generator | None = None,
    dataset_size: int | None = None,
) -> EvalResult:
    """Loss terms of ``images_uint8`` (N, C, H, W) at KL weight 1, in eval mode under inference_mode.

    generator: the posterior-sample noise (on the model's device). The model's training flag is restored.
    """
    images = torch.from_numpy(images_uint8) if isinstance(images_uint8, np.ndarray) else images_uint8
    n = int(images.shape[0])
    if n == 0:
        raise ValueError("evaluate needs at least one image, got 0")
    device = _device_of(model)
    amp = autocast_dtype(device)
    start = time.perf_counter()
    names: list[str] | None = None
    rows, sizes = [], []
    with _eval_mode(model), _autocast(device, amp):
        for i in range(0, n, batch_size):
            x = to_float(images[i : i + batch_size].to(device, non_blocking=True))
            out = model.loss(x, generator=generator, kl_weight=1.0, dataset_size=dataset_size or n)
            names = sorted(out.terms) if names is None else names
            values = [out.loss, out.recon_nll, out.kl, out.elbo, *(out.terms[k] for k in names)]
            rows.append(torch.stack([v.float() for v in values]))
            sizes.append(x.shape[0])
    # Read back once, sum in float64: batch means weighted by batch size.
    per_batch = torch.stack(rows).cpu().double()
    means = ((per_batch * torch.tensor(sizes, dtype=torch.float64)[:, None]).sum(0) / n).tolist()
    return EvalResult(
        loss=means[0], recon_nll=means[1], kl=means[2], elbo=means[3],
        terms=dict(zip(names, means[4:])), n=n, seconds=time.perf_counter() - start,
    )


def posterior_means(model: Autoencoder, images_uint8: torch.Tensor, batch_size: int) -> np.ndarray:
    """Posterior means (N, D) float32 of images_uint8 (N, C, H, W) on the model's device."""
    device = _device_of(model)
    chunks = []
    with _eval_mode(model), _autocast(device, autocast_dtype(device)):
        for i in range(0, int(images_uint8.shape[0]), batch_size):
            x = to_float(images_uint8[i : i + batch_size].to(device, non_blocking=True))
            chunks.append(model.encode(x).mean.float())
    if not chunks:
        return np.zeros((0, int(model.config.latent_dim)), dtype=np.float32)
    return torch.cat(chunks).cpu().numpy()


# -- fit --------------------------------------------------------------------------------------------


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


@dataclass
class _Position:
    """Mutable loop bookkeeping; everything here is what a checkpoint needs besides tensors."""

    epoch: int = 0  # completed epochs
    step_in_epoch: int = 0
    global_step: int = 0
    batches: list[list[float]] = field(default_factory=list)  # [loss, elbo, images] of this epoch's steps
    train_seconds: float = 0.0


class _BatchLog:
    """The losses of the epoch in progress, kept on the device until needed (reading them waits for it)."""

    def __init__(self, done: list[list[float]]) -> None:
        self.done = list(done)
        self.pending: list[tuple[torch.Tensor, torch.Tensor, int]] = []

    def add(self, out: LossOutput, n_images: int) -> None:
        self.pending.append((out.loss.detach(), out.elbo.detach(), n_images))

    def values(self) -> list[list[float]]:
        """[loss, elbo, images] per step so far (JSON-able, for checkpoints)."""
        if self.pending:
            pairs = torch.stack([t for loss, elbo, _ in self.pending for t in (loss, elbo)]).float()
            self.done += [[a, b, n] for (a, b), (*_, n) in zip(pairs.view(-1, 2).tolist(), self.pending)]
            self.pending = []
        return self.done

    def means(self) -> tuple[float, float, int]:
        """(mean loss, mean elbo) per image and the number of images; exactly rounded sums, so a resumed
        epoch gives the same numbers as an uninterrupted one."""
        rows = self.values()
        count = int(sum(n for *_, n in rows))
        loss = math.fsum(v * n for v, _, n in rows) / max(count, 1)
        elbo = math.fsum(v * n for _, v, n in rows) / max(count, 1)
        return loss, elbo, count


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
    (the schedule then spans the new total) but must keep every field in TRAJECTORY_FIELDS. A run resumed
    with the same config ends with exactly the weights of an uninterrupted one. KeyboardInterrupt (Ctrl-C)
    writes a checkpoint of the exact position and is re-raised. The model is moved to ``device``.
    """
    started = time.perf_counter()
    run_dir, device = Path(run_dir), torch.device(device)
    _check_data(model, train_set, test_set)
    model.to(device).train()
    train_images = torch.from_numpy(train_set.images).to(device)
    test_images = torch.from_numpy(test_set.images).to(device)
    n_train = len(train_set)
    steps_per_epoch = math.ceil(n_train / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    fused = True if device.type == "cuda" else None  # one kernel per step on GPUs; torch's default elsewhere
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=fused)
    reparam = torch.Generator(device=device).manual_seed(config.seed)
    probe = probe_index(len(test_set), config.probe_size, config.seed)
    if resume and data_info is None:
        data_info = runs.open_run(run_dir).data_info
    restored = _resume(model, optimizer, reparam, config, run_dir, data_info) if resume else None
    if restored is None:
        restored = _start(model, train_set, test_set, config, run_dir, data_info, probe, fresh=not resume)
    pos, snapshots = restored
    if config.compile:
        for child in model.children():
            child.compile()  # in place: state_dict keys stay as they are
    amp = autocast_dtype(device)
    ticker = _Ticker(progress)
    # Whether model, optimiser, generator and pos agree; False only while a step is being applied.
    consistent, log, epoch_start = True, None, time.perf_counter()
    progress.start(max(0, total_steps - pos.global_step), "training")
    try:
        with _deferred_sigint() as interrupted:
            for epoch in range(pos.epoch, config.epochs):
                order = epoch_permutation(n_train, config.seed, epoch).to(device)
                log = _BatchLog(pos.batches)
                epoch_start = time.perf_counter() - pos.train_seconds
                ticker.restart_clock()
                for i in range(pos.step_in_epoch, steps_per_epoch):
                    if interrupted.is_set():
                        raise KeyboardInterrupt
                    x = to_float(train_images[order[i * config.batch_size : (i + 1) * config.batch_size]])
                    lr = lr_at(pos.global_step, total_steps, config)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    consistent = False
                    out = train_step(
                        model, optimizer, x, generator=reparam,
                        kl_weight=kl_weight_at(pos.global_step, steps_per_epoch, config),
                        dataset_size=n_train, grad_clip=config.grad_clip, amp_dtype=amp,
                    )
                    log.add(out, x.shape[0])
                    pos.global_step, pos.step_in_epoch = pos.global_step + 1, i + 1
                    consistent = True
                    ticker.step(x.shape[0], out.loss)
                ticker.flush()
                pos.batches, log = log.values(), None
                pos.train_seconds = time.perf_counter() - epoch_start
                record = _end_epoch(model, test_images, test_set, config, run_dir, probe, snapshots, pos,
                                    total_steps, steps_per_epoch)
                pos = _Position(epoch=epoch + 1, global_step=pos.global_step)
                _checkpoint(run_dir, model, optimizer, reparam, pos, weights_saved=True)
                logger.info("epoch %d: test elbo %.2f nats", record["epoch"], record["test_elbo"])
    except KeyboardInterrupt:
        if not consistent:
            logger.warning("interrupted inside a step: no checkpoint written; the last one stays in %s", run_dir)
            raise
        if log is not None:  # inside an epoch: keep its losses so far and its clock
            pos.batches, pos.train_seconds = log.values(), time.perf_counter() - epoch_start
        _checkpoint(run_dir, model, optimizer, reparam, pos)
        logger.info("interrupted at epoch %d step %d; checkpoint in %s", pos.epoch + 1, pos.step_in_epoch, run_dir)
        raise
    finally:
        progress.close()
    history = tuple(runs.read_metrics(run_dir))
    return FitResult(run_dir, pos.epoch, pos.global_step, history, time.perf_counter() - started)


def _end_epoch(model, test_images, test_set, config, run_dir, probe, snapshots, pos, total_steps,
               steps_per_epoch) -> dict[str, Any]:
    """Evaluate, store the probe codes and the metrics record, save the weights; returns the record."""
    device = test_images.device
    eval_gen = torch.Generator(device=device).manual_seed(config.seed + EVAL_SEED_OFFSET)
    ev = evaluate(model, test_images, config.eval_batch_size, generator=eval_gen)
    epoch = pos.epoch + 1
    if len(probe):
        probe_t = torch.from_numpy(probe).to(device)
        snapshots[runs.snapshot_key(epoch)] = posterior_means(model, test_images[probe_t], config.eval_batch_size)
        runs.write_snapshots(run_dir / runs.SNAPSHOTS, snapshots)
    train_loss, train_elbo, count = _BatchLog(pos.batches).means()
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


def _start(model, train_set, test_set, config, run_dir, data_info, probe, fresh: bool):
    """Start from step 0: write config.json and snapshot epoch 0. ``fresh``: refuse a folder holding a run."""
    has_records = bool(runs.read_metrics(run_dir))
    if fresh and ((run_dir / runs.TRAINER_STATE).exists() or has_records):
        raise ValueError(f"{run_dir}: already holds a run; resume it or choose an empty folder")
    if has_records:  # a resumed run that never reached its first checkpoint
        runs.keep_metrics_through(run_dir, 0)
    info = data_info if data_info is not None else {"name": train_set.name}
    runs.write_run_config(run_dir, model.config, config, info)
    snapshots: dict[str, np.ndarray] = {}
    if len(probe):
        snapshots["probe_index"] = probe
        if test_set.labels is not None:
            snapshots["probe_labels"] = test_set.labels[probe].astype(np.int64)
        probe_images = torch.from_numpy(test_set.images[probe])
        snapshots[runs.snapshot_key(0)] = posterior_means(model, probe_images, config.eval_batch_size)
        runs.write_snapshots(run_dir / runs.SNAPSHOTS, snapshots)
    return _Position(), snapshots


def _resume(model, optimizer, reparam, config, run_dir, data_info):
    """Restore weights, optimiser, RNG and position from the run folder; drop records written after them.

    Returns None when the run has no checkpoint yet (stopped before its first epoch ended): the caller then
    starts it from step 0, which is what resuming it means since the model passed in is the fresh one."""
    run = runs.open_run(run_dir)
    if run.model_config != model.config:
        raise ValueError(f"{run_dir}: the model to resume has config {model.config}, the run has {run.model_config}")
    saved = run.train_config
    changed = [f"{k}={getattr(config, k)!r} (run has {getattr(saved, k)!r})"
               for k in TRAJECTORY_FIELDS if getattr(config, k) != getattr(saved, k)]
    if changed:
        raise ValueError(f"{run_dir}: cannot resume with changed {', '.join(changed)}; only epochs may change")
    if not run.has_checkpoint:
        logger.info("%s has no checkpoint yet: starting it from the beginning", run_dir)
        return None
    state = load_trainer_state(run_dir / runs.TRAINER_STATE, optimizer)
    if state.model_state is None:
        raise ValueError(f"{run_dir / runs.TRAINER_STATE}: holds no weights to resume from")
    model.load_state_dict(state.model_state)
    _restore_generator(reparam, state, config)
    runs.keep_metrics_through(run_dir, state.epoch)
    runs.write_run_config(run_dir, model.config, config, data_info)
    snapshots = {k: v for k, v in run.snapshots().items()
                 if not k.startswith("epoch_") or int(k.removeprefix("epoch_")) <= state.epoch}
    if state.epoch > config.epochs:
        raise ValueError(f"{run_dir}: has completed {state.epoch} epochs; epochs={config.epochs} must be at least that")
    extra = state.extra
    pos = _Position(
        epoch=state.epoch, step_in_epoch=state.step_in_epoch, global_step=state.global_step,
        batches=[list(b) for b in extra.get("batches", [])], train_seconds=float(extra.get("train_seconds", 0.0)),
    )
    logger.info("resuming %s at epoch %d step %d", run_dir, pos.epoch + 1, pos.step_in_epoch)
    return pos, snapshots


def _restore_generator(reparam: torch.Generator, state: TrainerState, config: TrainConfig) -> None:
    saved_type = state.extra.get("generator_device", "cpu")
    if saved_type == reparam.device.type and "reparam" in state.generator_states:
        reparam.set_state(state.generator_states["reparam"])
    else:
        # Another kind of device has another kind of generator state: continue with a stream fixed by the
        # position, so the resumed run is still reproducible (though not identical to an uninterrupted one).
        reparam.manual_seed(config.seed * 100003 + state.global_step + 1)
        logger.info("checkpoint noise state is for %s, resuming on %s: noise reseeded", saved_type,
                    reparam.device.type)


def _checkpoint(run_dir, model, optimizer, reparam, pos: _Position, weights_saved: bool = False) -> None:
    """Write trainer_state.safetensors (and model.safetensors unless just written) for position ``pos``."""
    if not weights_saved:
        save_model(model, run_dir)
    save_trainer_state(
        run_dir / runs.TRAINER_STATE, optimizer, scheduler_step=pos.global_step, epoch=pos.epoch,
        step_in_epoch=pos.step_in_epoch, global_step=pos.global_step,
        generator_states={"reparam": reparam.get_state()},
        extra={"batches": pos.batches, "train_seconds": pos.train_seconds,
               "generator_device": reparam.device.type},
        model_state=model.state_dict(),
    )


def _check_data(model: Autoencoder, train_set: ImageSet, test_set: ImageSet) -> None:
    expected = tuple(model.config.image_shape)
    for s in (train_set, test_set):
        if s.shape != expected:
            raise ValueError(f"{s.name} ({s.split or 'all'}) images are {s.shape}, the model expects {expected}")
        if len(s) == 0:
            raise ValueError(f"{s.name} ({s.split or 'all'}) has no images")


class _Ticker:
    """Reports progress every PROGRESS_EVERY_STEPS steps or PROGRESS_EVERY_S seconds, whichever comes first:
    reading the loss waits for the device, so it is not done every step."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.steps = self.images = 0
        self.last = time.perf_counter()
        self.loss = torch.zeros(())

    def step(self, n_images: int, loss: torch.Tensor) -> None:
        self.steps += 1
        self.images += n_images
        self.loss = loss.detach()  # detached: holding the graph would keep the step's activations alive
        if self.steps >= PROGRESS_EVERY_STEPS or time.perf_counter() - self.last >= PROGRESS_EVERY_S:
            self.flush()

    def flush(self) -> None:
        """Report the steps not yet reported (also at the end of an epoch, so the bar ends full)."""
        if self.steps == 0:
            return
        now = time.perf_counter()
        img_s = self.images / max(now - self.last, 1e-9)
        steps, self.steps, self.images, self.last = self.steps, 0, 0, now
        self.progress.advance(steps, loss=float(self.loss), img_s=img_s)

    def restart_clock(self) -> None:
        """Start timing afresh (after an evaluation, which is not training speed)."""
        self.last = time.perf_counter()


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


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        for m, training in modes:
            m.training = training


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device
