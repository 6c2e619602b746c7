"""The console script sets OpenMP's wait policy before torch loads (issue 13: training that survives a busy
machine), and a value the user chose wins."""
from __future__ import annotations

import os
import subprocess
import sys

PROBE = ("import atexit, os, sys\n"
         "atexit.register(lambda: print('policy=' + os.environ.get('OMP_WAIT_POLICY', '<unset>')))\n"
         "import latentspace.cli.entry as entry\n"
         "assert 'torch' not in sys.modules, 'torch loaded before the thread settings'\n"
         "sys.argv = ['latentspace', '--help']\n"
         "entry.main()\n")


def run_probe(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    done = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout  # the command really ran
    return done.stdout.strip().splitlines()[-1]


def test_the_cli_sleeps_idle_openmp_threads():
    assert run_probe() == "policy=PASSIVE"


def test_a_wait_policy_the_user_set_is_kept():
    assert run_probe(OMP_WAIT_POLICY="ACTIVE") == "policy=ACTIVE"
