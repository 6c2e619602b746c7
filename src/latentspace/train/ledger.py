"""What the loop writes down as it goes: its position, the losses of the epoch in progress, progress reports.

Reading a loss back waits for the device, so the per-step numbers stay on it and are read in one go at a
*sync*: every PROGRESS_EVERY_STEPS steps, at a progress report and at the end of an epoch. A sync is also
where training is checked for divergence (a NaN or infinite loss or gradient norm) and, on several
processes, where the ranks add up their shares and agree to stop, so that every rank stops at the same step.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from latentspace.train import distributed
from latentspace.train.distributed import World
from latentspace.train.step import StepOutput
from latentspace.utils.progress import Progress

# Columns of the table a sync sums over the ranks: loss and elbo times images (so sums of shares give the
# global batch's mean), images, then counts of the ways a step can go wrong, worst first.
_SUMS, _FLAGS = 3, ("loss is nan", "loss is inf", "gradient norm is nan", "gradient norm is inf")


class TrainingDiverged(ValueError):
    """A step produced a NaN or infinite loss, gradient or weight; nothing was written from it."""


@dataclass
class Position:
    """Mutable loop bookkeeping; everything here is what a checkpoint needs besides tensors."""

    epoch: int = 0  # completed epochs
    step_in_epoch: int = 0
    global_step: int = 0
    batches: list[list[float]] = field(default_factory=list)  # [loss, elbo, images] of this epoch's steps
    train_seconds: float = 0.0

    def describe(self) -> str:
        """The position in words, as a checkpoint at it is named in messages."""
        if self.global_step == 0:
            return "step 0, before training"
        if self.step_in_epoch == 0:
            return f"epoch {self.epoch}"
        return f"epoch {self.epoch + 1}, step {self.step_in_epoch}"


@dataclass(frozen=True)
class Health:
    """The verdict of a sync: the first bad step (1-based global step) and what went wrong, if any; and
    whether any rank was interrupted (Ctrl-C)."""

    bad_step: int | None = None
    problem: str = ""
    interrupted: bool = False


class StepLog:
    """The losses of the epoch in progress: ``done`` rows [loss, elbo, images] (global batch means, JSON-able,
    for checkpoints) and the steps since the last sync, still on the device."""

    def __init__(self, done: list[list[float]], world: World, device: torch.device) -> None:
        self.done = [list(row) for row in done]
        self.world, self.device = world, device
        self.pending: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor, int]] = []

    def add(self, step: int, out: StepOutput, n_images: int) -> None:
        """Step ``step`` (1-based) saw ``n_images`` of this rank's images (0 for a rank without a share)."""
        self.pending.append((step, out.losses.loss.detach(), out.losses.elbo.detach(), out.grad_norm, n_images))

    def sync(self, interrupted: bool = False) -> Health:
        """Read the pending steps back (one wait for the device) and, on several processes, sum them over the
        ranks (one all-reduce, which every rank must call at the same step)."""
        steps = [p[0] for p in self.pending]
        table = torch.zeros((len(steps) + 1, _SUMS + len(_FLAGS)), dtype=torch.float64, device=self.device)
        if steps:
            loss, elbo, norm = (torch.stack([p[k] for p in self.pending]).double() for k in (1, 2, 3))
            n = torch.tensor([p[4] for p in self.pending], dtype=torch.float64, device=self.device)
            # loss * n / n is loss exactly in float64, so one process logs its float32 losses unchanged.
            flags = [t.double() for t in (loss.isnan(), loss.isinf(), norm.isnan(), norm.isinf())]
            table[:-1] = torch.stack([loss * n, elbo * n, n, *flags], dim=1)
        table[-1, 0] = float(interrupted)
        rows = distributed.all_sum(table, self.world).cpu().tolist()
        self.pending = []
        bad_step, problem = None, ""
        for step, (loss_sum, elbo_sum, n, *flags) in zip(steps, rows):
            self.done.append([loss_sum / n, elbo_sum / n, int(n)])
            if bad_step is None and any(flags):
                bad_step, problem = step, next(what for what, f in zip(_FLAGS, flags) if f)
        return Health(bad_step, problem, interrupted=rows[-1][0] > 0)

    def values(self) -> list[list[float]]:
        """[loss, elbo, images] per step up to the last sync."""
        return self.done


def epoch_means(rows: list[list[float]]) -> tuple[float, float, int]:
    """(mean loss, mean elbo) per image over [loss, elbo, images] rows, and the number of images; exactly
    rounded sums, so a resumed epoch gives the same numbers as an uninterrupted one."""
    count = int(sum(n for *_, n in rows))
    loss = math.fsum(v * n for v, _, n in rows) / max(count, 1)
    elbo = math.fsum(v * n for _, v, n in rows) / max(count, 1)
    return loss, elbo, count


def weights_problem(model: torch.nn.Module) -> str | None:
    """'weight NAME is not finite' for the first parameter holding NaN or inf, else None (one device wait)."""
    named = [(k, v) for k, v in model.state_dict().items() if v.is_floating_point()]
    finite = torch.stack([torch.isfinite(v).all() for _, v in named]).cpu().tolist()
    bad = [k for (k, _), ok in zip(named, finite) if not ok]
    return f"weight {bad[0]} is not finite" if bad else None


class Ticker:
    """Reports progress every ``every_steps`` steps or PROGRESS_EVERY_S seconds, whichever comes first:
    reading the loss waits for the device, so it is not done every step."""

    def __init__(self, progress: Progress, every_steps: int, every_s: float) -> None:
        self.progress, self.every_steps, self.every_s = progress, every_steps, every_s
        self.steps = self.images = 0
        self.last = time.perf_counter()
        self.loss = torch.zeros(())

    def step(self, n_images: int, loss: torch.Tensor) -> bool:
        """Count one step of ``n_images`` images; True when this reported (and so waited for the device)."""
        self.steps += 1
        self.images += n_images
        self.loss = loss.detach()  # detached: holding the graph would keep the step's activations alive
        if self.steps >= self.every_steps or time.perf_counter() - self.last >= self.every_s:
            self.flush()
            return True
        return False

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
