"""How many CPU threads a command uses and how they wait, chosen once at start-up from how busy the machine is.

Measured on 2 cores (`latentspace train --data faces --size 32 --n 6000 --epochs 3`, images/s; benchmarks/
busy_machine.py has the full table):

- quiet, OpenMP's default waiting (a thread spins briefly at a barrier, then sleeps): 4,965; 1 thread: 3,219;
  2 threads that sleep at once at every barrier (OMP_WAIT_POLICY=PASSIVE): 2,240. Waking a sleeping thread
  costs more than the small operations of these nets take, so PASSIVE halves quiet speed.
- beside a 2-thread torch loop with OpenMP defaults, which spins on both cores: 2 spinning threads 298, 2
  passive threads 887, 1 thread 2,237. Two threads meet at a barrier only when the scheduler runs both, which a
  competitor on every core makes rare; one thread never waits for another.

So: a quiet machine keeps OpenMP's defaults and every core; a busy one gets PASSIVE waiting and only the cores
nobody else is using (at least one). Anything the user set (OMP_NUM_THREADS, OMP_WAIT_POLICY, or --threads
later) wins, and so does a launcher's (torchrun sets OMP_NUM_THREADS). The choice happens before torch loads,
since OpenMP reads these settings once; no torch import here.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

SAMPLE_SECONDS = 0.15  # how long the machine's load is sampled at start-up
BUSY_FROM = 0.5  # cores used by other processes from which the machine counts as busy
USER_SETTINGS = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")
PROC_STAT = Path("/proc/stat")


@dataclass(frozen=True)
class ThreadPlan:
    """threads: intra-op threads (None: leave torch's default, every core); env: settings to put in the
    environment before torch loads; why: one line for the log."""

    threads: int | None
    env: dict[str, str]
    why: str


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole machine since boot, or None where /proc/stat is not readable."""
    try:
        fields = PROC_STAT.read_text().split("\n", 1)[0].split()
        values = [int(v) for v in fields[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])


def others_busy_cores(seconds: float = SAMPLE_SECONDS) -> float | None:
    """Cores' worth of CPU that other processes used over the next ``seconds`` (this process's own time is
    subtracted), or None where the machine's counters cannot be read (not Linux)."""
    before, own_before, start = _cpu_jiffies(), _own_seconds(), time.monotonic()
    if before is None:
        return None
    time.sleep(seconds)
    after, own_after, elapsed = _cpu_jiffies(), _own_seconds(), time.monotonic() - start
    if after is None:
        return None
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy = (after[0] - before[0]) / tick - (own_after - own_before)
    return max(0.0, busy / max(elapsed, 1e-3))


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


def plan_threads(cpus: int, busy: float | None, environ: dict[str, str] | os._Environ) -> ThreadPlan:
    """The plan for a machine of ``cpus`` cores of which ``busy`` are used by others (None: unknown)."""
    given = [key for key in USER_SETTINGS if environ.get(key) is not None]
    if given:
        return ThreadPlan(None, {}, f"{', '.join(given)} set by the user: kept")
    if busy is None or busy < BUSY_FROM:
        return ThreadPlan(None, {}, f"quiet machine: {cpus} threads, OpenMP's default waiting")
    free = max(1, cpus - math.ceil(busy - 0.25))  # a competitor at 1.8 cores leaves none free, at 1.2 one
    return ThreadPlan(free, {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": str(free)},
                      f"busy machine (others use {busy:.1f} of {cpus} cores): {free} thread(s), passive waiting")
