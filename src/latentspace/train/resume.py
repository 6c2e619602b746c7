"""The run folder at the loop's edges: starting a run, writing a checkpoint, and resuming from one.

A checkpoint (trainer_state.safetensors) holds the weights, the optimiser, the exact position, the losses of
the epoch in progress and every rank's noise generator state, so a resumed run replays exactly the steps an
uninterrupted one would have taken. Reading is done by every rank; writing by rank 0 alone.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from latentspace.models import save_model
from latentspace.train import distributed
from latentspace.train import run as runs
from latentspace.train.checkpoint import TrainerState, load_trainer_state, save_trainer_state
from latentspace.train.config import TrainConfig
from latentspace.train.distributed import World
from latentspace.train.ledger import Position
from latentspace.train.step import posterior_means

logger = logging.getLogger(__name__)

# Fields a resume must keep: they shape the trajectory or the probe set (epochs may grow; the rest is speed).
TRAJECTORY_FIELDS = ("batch_size", "lr", "weight_decay", "warmup_steps", "kl_warmup_epochs", "grad_clip", "seed",
                     "probe_size", "hflip", "precision")


def refuse_taken(run_dir: Path) -> None:
    """A fresh run must not start over a folder holding a checkpoint or metrics."""
    if (run_dir / runs.TRAINER_STATE).exists() or runs.read_metrics(run_dir):
        raise ValueError(f"{run_dir}: already holds a run; resume it or choose an empty folder")


def start_folder(model, train_set, test_set, config, run_dir, data_info, probe) -> dict[str, np.ndarray]:
    """Rank 0, at step 0: write config.json and snapshot epoch 0; returns the snapshots."""
    if runs.read_metrics(run_dir):  # a resumed run that never reached its first checkpoint
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
    return snapshots


def load_checkpoint(model, optimizer, reparam, config, run_dir, world: World) -> Position | None:
    """Restore weights, optimiser, noise and position from the run folder (reading only: every rank does it).

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
        done = len(run.metrics())
        if done:  # epochs were completed, so a checkpoint was written and is lost: starting over is no resume
            raise ValueError(f"{run_dir / runs.TRAINER_STATE}: missing, yet the run has completed {done} epoch(s); "
                             "it cannot be resumed exactly: train into a new folder")
        logger.info("%s has no checkpoint yet: starting it from the beginning", run_dir)
        return None
    state = load_trainer_state(run_dir / runs.TRAINER_STATE, optimizer)
    if state.model_state is None:
        raise ValueError(f"{run_dir / runs.TRAINER_STATE}: holds no weights to resume from")
    if state.epoch > config.epochs:
        raise ValueError(f"{run_dir}: has completed {state.epoch} epochs; epochs={config.epochs} must be at least that")
    model.load_state_dict(state.model_state)
    restore_noise(reparam, state, config, world)
    extra = state.extra
    pos = Position(
        epoch=state.epoch, step_in_epoch=state.step_in_epoch, global_step=state.global_step,
        batches=[list(b) for b in extra.get("batches", [])], train_seconds=float(extra.get("train_seconds", 0.0)),
    )
    if world.is_main:
        logger.info("resuming %s at epoch %d step %d", run_dir, pos.epoch + 1, pos.step_in_epoch)
    return pos


def rewind_folder(model, config, run_dir, data_info, epoch: int) -> dict[str, np.ndarray]:
    """Rank 0, resuming after ``epoch`` completed epochs: drop records and snapshots written after the
    checkpoint, record the (possibly longer) config; returns the snapshots kept."""
    runs.keep_metrics_through(run_dir, epoch)
    runs.write_run_config(run_dir, model.config, config, data_info)
    return {k: v for k, v in runs.open_run(run_dir).snapshots().items()
            if not k.startswith("epoch_") or int(k.removeprefix("epoch_")) <= epoch}


def noise_names(world_size: int) -> list[str]:
    """Checkpoint names of the ranks' noise generators ("reparam" alone for one process, as ever)."""
    return ["reparam"] if world_size == 1 else [f"reparam_rank{r}" for r in range(world_size)]


def restore_noise(reparam: torch.Generator, state: TrainerState, config: TrainConfig, world: World) -> None:
    saved_type = state.extra.get("generator_device", "cpu")
    saved_world = int(state.extra.get("world_size", 1))
    name = noise_names(world.size)[world.rank]
    if saved_type == reparam.device.type and saved_world == world.size and name in state.generator_states:
        reparam.set_state(state.generator_states[name])
        return
    # Another kind of device has another kind of generator state, and another number of processes other
    # streams: continue with a stream fixed by the position, so the resumed run is still reproducible
    # (though not identical to an uninterrupted one).
    reparam.manual_seed(distributed.noise_seed(config.seed, world) * 100003 + state.global_step + 1)
    if world.is_main:
        logger.info("checkpoint noise states are for %d process(es) on %s, resuming on %d on %s: noise reseeded",
                    saved_world, saved_type, world.size, reparam.device.type)


def write_checkpoint(run_dir, model, optimizer, noise_states: list[torch.Tensor], reparam: torch.Generator,
                     pos: Position, weights_saved: bool = False) -> None:
    """Write trainer_state.safetensors (and model.safetensors unless just written) for position ``pos``.
    noise_states: every rank's noise generator state, in rank order."""
    if not weights_saved:
        save_model(model, run_dir)
    save_trainer_state(
        run_dir / runs.TRAINER_STATE, optimizer, scheduler_step=pos.global_step, epoch=pos.epoch,
        step_in_epoch=pos.step_in_epoch, global_step=pos.global_step,
        generator_states=dict(zip(noise_names(len(noise_states)), noise_states)),
        extra={"batches": pos.batches, "train_seconds": pos.train_seconds,
               "generator_device": reparam.device.type, "world_size": len(noise_states)},
        model_state=model.state_dict(),
    )
