"""The console script's first frame: Ctrl-C while torch and friends are still importing is one line too.

Kept free of heavy imports on purpose; everything else lives in cli.main.
"""
from __future__ import annotations

import sys


def main() -> None:
    try:
        from latentspace.cli.main import main as run
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)
    run()
