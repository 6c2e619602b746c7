"""The console script's first frame: settings that must precede `import torch`, and Ctrl-C while torch and friends
are still importing as one line too.

Kept free of heavy imports on purpose; everything else lives in cli.main.
"""
from __future__ import annotations

import os
import signal
import sys

from latentspace.utils.heap import keep_freed_memory
from latentspace.utils.threads import USER_SETTINGS, ThreadPlan, others_busy_cores, plan_threads

# OpenMP reads its settings once, when torch loads it: the thread plan (utils.threads) is made before that. A quiet
# machine keeps OpenMP's defaults and every core; a busy one gets passive waiting and the cores nobody else uses.
# Settings the user made win.
PLAN: ThreadPlan | None = None


def prepare_environment() -> ThreadPlan:
    global PLAN
    busy = None if any(os.environ.get(k) is not None for k in USER_SETTINGS) else others_busy_cores()
    PLAN = plan_threads(os.cpu_count() or 1, busy, os.environ)
    os.environ.update(PLAN.env)
    keep_freed_memory()  # before torch allocates anything
    return PLAN


def _interrupted_at_start(signum, frame) -> None:
    # Nothing is written before the verb runs, so leaving at once is safe; a KeyboardInterrupt raised inside an
    # import instead can leave a module half made (numpy's then recursed without end: a traceback, exit 1).
    os.write(2, b"error: interrupted\n")  # unbuffered: os._exit flushes nothing
    os._exit(130)


def main() -> None:
    previous = signal.signal(signal.SIGINT, _interrupted_at_start)
    try:
        prepare_environment()  # samples the machine's load for a fraction of a second
        from latentspace.cli.main import app_for, main as run

        app = app_for(sys.argv[1:])  # every import the verb needs, torch's included
    finally:
        signal.signal(signal.SIGINT, previous)
    run(app)
