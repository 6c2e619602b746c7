"""The console script's first frame: settings that must precede `import torch`, and Ctrl-C while torch and friends
are still importing as one line too.

Kept free of heavy imports on purpose; everything else lives in cli.main.
"""
from __future__ import annotations

import os
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


def main() -> None:
    try:
        prepare_environment()  # samples the machine's load for a fraction of a second: Ctrl-C may land here
        from latentspace.cli.main import main as run
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)
    run()
