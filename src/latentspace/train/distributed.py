"""Training on several processes: torchrun's environment, the process group, and each rank's share of the work.

``torchrun --nproc_per_node=N -m latentspace -- train ...`` starts N copies of the command; they differ only in
the RANK / LOCAL_RANK / WORLD_SIZE torchrun puts in their environment (with MASTER_ADDR and MASTER_PORT, or
its rendezvous flags across machines). The entry point calls ``join`` once; ``fit`` then finds the process
group through ``current`` and:

- batches: ``batch_size`` is the *global* batch. Every rank draws the same seeded permutation of the epoch,
  cuts the same global batches from it and takes its own contiguous share of each (``shard``). Each rank
  scales its mean loss by (its rows x ranks / global rows), so the gradient DDP averages is the gradient of
  the global batch's mean, the last, smaller batch included: the trajectory is a single-process run's with
  the same batch, up to float reduction order (and the noise, below). Only beta-tcvae's minibatch estimate
  of the total correlation sees one rank's share of the batch rather than the whole of it.
- noise: each rank draws its reparameterisation noise from its own generator, seeded from (seed, rank)
  (``noise_seed``), so ranks never share noise. A distributed run is therefore reproducible for the same
  number of processes, but not bit-identical to a single-process run. Checkpoints hold every rank's
  generator state, so ``--resume`` with the same number of processes continues exactly.
- writing: rank 0 alone evaluates on the test set, stores snapshots, metrics, weights and checkpoints and
  reports progress; the other ranks wait for it at a barrier.
"""
from __future__ import annotations

import atexit
import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from latentspace.models import Autoencoder, LossOutput

ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class World:
    """This process's place among the training processes: rank in 0..size-1."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes the run folder and talks to the terminal."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.size > 1


def launched_by_torchrun() -> bool:
    """Whether torchrun (or another launcher setting its variables) started several processes."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def join(device: torch.device) -> torch.device:
    """At the entry point: under torchrun, join the process group and return this rank's device (cuda:LOCAL_RANK
    on GPUs, with NCCL; the CPU with gloo). A single process gets ``device`` back and joins nothing."""
    if not launched_by_torchrun() or dist.is_initialized():
        return device
    missing = [k for k in ENV if k not in os.environ]
    if missing:
        raise ValueError(f"WORLD_SIZE={os.environ['WORLD_SIZE']} but {', '.join(missing)} unset: launch several "
                         "processes with torchrun (torchrun --nproc_per_node=N -m latentspace -- train ...)")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"training on several processes runs on cpu or cuda, not {device.type}; pass --device cpu")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))  # one GPU per process, whatever --device said
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", init_method="env://", device_id=device)
    else:
        dist.init_process_group("gloo", init_method="env://")
    atexit.register(_leave)
    return device


def leave() -> None:
    """At the entry point, after a command that succeeded: leave the process group together. (Leaving
    without waiting for the others can abort the process at exit: gloo then finds its peers gone.)"""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _leave() -> None:
    # atexit, when the command failed: the others may be gone or stuck, so wait for nobody.
    if dist.is_initialized():
        dist.destroy_process_group()


def current() -> World:
    """The default process group as a World; World() when there is none (a plain single process)."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def check_batch(batch_size: int, world: World) -> None:
    """Every rank needs at least one image of a full batch."""
    if batch_size < world.size:
        raise ValueError(f"batch_size {batch_size} is smaller than the {world.size} processes; the batch is global "
                         f"(shared by all of them): use a batch of at least {world.size} images")


def shard(batch: torch.Tensor, world: World) -> tuple[torch.Tensor, int, float]:
    """This rank's rows of a global batch of indices (b,): (rows, how many are its own, loss scale).

    The rows are a contiguous slice of about b / size. A rank left without rows (a last batch smaller than
    the number of ranks) still has to take part in DDP's gradient averaging: it gets the batch's first row
    with loss scale 0, which adds exactly nothing.
    """
    b = int(batch.shape[0])
    if not world.is_distributed:
        return batch, b, 1.0
    lo, hi = b * world.rank // world.size, b * (world.rank + 1) // world.size
    if hi == lo:
        return batch[:1], 0, 0.0
    return batch[lo:hi], hi - lo, (hi - lo) * world.size / b


def noise_seed(seed: int, world: World) -> int:
    """The seed of this rank's reparameterisation noise: ``seed`` itself for a single process (as ever), else a
    stream mixed from (seed, rank), so that no two ranks, and no two seeds, share one."""
    if not world.is_distributed:
        return seed
    return int(np.random.SeedSequence([seed, world.rank]).generate_state(1)[0])


class _LossForward(nn.Module):
    """Autoencoder.loss as a forward pass: DDP averages the gradients only of graphs built through its forward."""

    def __init__(self, model: Autoencoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, x, generator=None, kl_weight: float = 1.0, dataset_size: int | None = None) -> LossOutput:
        return self.model.loss(x, generator=generator, kl_weight=kl_weight, dataset_size=dataset_size)


class DataParallelLoss:
    """What train_step uses of a model (``loss``, ``parameters``) with DistributedDataParallel underneath.

    The model itself is not renamed or copied: its state_dict keeps its keys (no ``module.`` prefix), so a run
    trained on several processes is saved and opened like any other. DDP broadcasts rank 0's weights here."""

    def __init__(self, model: Autoencoder, device: torch.device) -> None:
        ids = [device] if device.type == "cuda" else None
        self.ddp = DistributedDataParallel(_LossForward(model), device_ids=ids)
        # On grey images the first convolution's weight gradient (out, 1, k, k) comes back with another stride
        # on its size-1 axis than the weight: the same memory layout, yet DDP warns once per process. Silenced
        # for exactly that message, so that a run prints what matters.
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides", category=UserWarning)

    def loss(self, x, generator=None, kl_weight: float = 1.0, dataset_size: int | None = None) -> LossOutput:
        return self.ddp(x, generator=generator, kl_weight=kl_weight, dataset_size=dataset_size)

    def parameters(self):
        return self.ddp.parameters()


def all_sum(t: torch.Tensor, world: World) -> torch.Tensor:
    """Sum ``t`` over the ranks, in place (nothing to do for one process)."""
    if world.is_distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def gather(state: torch.Tensor, world: World) -> list[torch.Tensor]:
    """Every rank's ``state`` (a small CPU tensor, e.g. a generator state), in rank order, on every rank."""
    if not world.is_distributed:
        return [state]
    states: list[torch.Tensor | None] = [None] * world.size
    dist.all_gather_object(states, state.cpu())
    return states  # type: ignore[return-value]


def barrier(world: World) -> None:
    if world.is_distributed:
        dist.barrier()
