"""The console script's first frame: settings that must precede `import torch`, and Ctrl-C while torch and friends
are still importing as one line too.

Kept free of heavy imports on purpose; everything else lives in cli.main.
"""
from __future__ import annotations

import os
import sys

# OpenMP reads these once, when torch loads it. PASSIVE: a thread waiting at a barrier sleeps instead of spinning,
# so on a busy machine our idle threads give their core to whoever needs it (another job, or our own straggler)
# rather than burning it; quiet-machine speed is unchanged (benchmarks/busy_machine.py). A value the user set wins.
THREAD_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def prepare_environment() -> None:
    for key, value in THREAD_ENV.items():
        os.environ.setdefault(key, value)


def main() -> None:
    prepare_environment()
    try:
        from latentspace.cli.main import main as run
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)
    run()
