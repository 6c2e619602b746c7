"""The start-up thread plan (utils.threads, cli.entry): quiet machines keep OpenMP's defaults, busy ones get passive
waiting and the free cores, and settings the user made win. Measured in child processes, since OpenMP reads its
settings once, when torch loads."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from latentspace.utils.threads import BUSY_FROM, others_busy_cores, plan_threads

pytestmark = pytest.mark.serial  # they read the machine's load: run alone, after the parallel pass

CPUS = os.cpu_count() or 1
REPORT = ("from latentspace.cli import entry; plan = entry.prepare_environment(); import os, torch; "
          "print(torch.get_num_threads(), os.environ.get('OMP_WAIT_POLICY'), plan.why, sep='|')")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "KMP_", "MKL_"))}
    return {**env, **extra}


def child_plan(env: dict[str, str]) -> tuple[int, str | None, str]:
    out = subprocess.run([sys.executable, "-c", REPORT], env=env, capture_output=True, text=True, check=True)
    threads, policy, why = out.stdout.strip().split("|")
    return int(threads), (None if policy == "None" else policy), why


@pytest.fixture
def burners():
    """One spinning process per core: a machine with no core free."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(CPUS)]
    time.sleep(0.5)
    yield
    for p in procs:
        p.kill()
        p.wait()


@pytest.mark.parametrize("busy, threads, policy", [(None, None, None), (0.1, None, None), (0.6, 1, "PASSIVE"),
                                                   (1.2, 1, "PASSIVE"), (2.0, 1, "PASSIVE")])
def test_plan_on_two_cores(busy, threads, policy):
    plan = plan_threads(2, busy, {})
    assert plan.threads == threads and plan.env.get("OMP_WAIT_POLICY") == policy
    assert plan.env.get("OMP_NUM_THREADS") == (None if threads is None else str(threads))


def test_plan_leaves_the_free_cores_of_a_larger_machine_and_keeps_user_settings():
    assert plan_threads(8, 3.0, {}).threads == 5
    assert plan_threads(8, 2.7, {}).threads == 5  # a competitor at 2.7 cores takes three
    for key in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY"):
        plan = plan_threads(2, 2.0, {key: "1"})
        assert plan.threads is None and plan.env == {} and key in plan.why


def test_busy_cores_sees_other_processes(burners):
    assert others_busy_cores(0.3) >= min(CPUS, 2) * 0.6


def test_busy_cores_leaves_out_this_process_own_work():
    baseline = others_busy_cores(0.3)
    if baseline is None or baseline >= 0.2:
        pytest.skip(f"the machine is not quiet now (others use {baseline} cores)")
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            pass

    worker = threading.Thread(target=spin)
    worker.start()
    try:
        assert others_busy_cores(0.3) < BUSY_FROM  # about a core of our own, not counted
    finally:
        stop.set()
        worker.join()


def test_a_busy_machine_gets_passive_waiting_and_the_free_cores(burners):
    threads, policy, why = child_plan(clean_env())
    assert (threads, policy) == (1, "PASSIVE") and why.startswith("busy machine")


def test_a_quiet_machine_keeps_every_core_and_openmps_default_waiting():
    busy = others_busy_cores(0.3)
    if busy is None or busy >= BUSY_FROM:
        pytest.skip(f"the machine is not quiet now (others use {busy} cores)")
    threads, policy, why = child_plan(clean_env())
    assert (threads, policy) == (CPUS, None) and why.startswith("quiet machine")


def test_the_users_own_settings_win_even_on_a_busy_machine(burners):
    assert child_plan(clean_env(OMP_NUM_THREADS="2", OMP_WAIT_POLICY="ACTIVE"))[:2] == (2, "ACTIVE")
    threads, policy, why = child_plan(clean_env(OMP_WAIT_POLICY="PASSIVE"))
    assert (threads, policy) == (CPUS, "PASSIVE") and "set by the user" in why


PROBE = ("import atexit, os, sys\n"
         "atexit.register(lambda: print('policy=' + os.environ.get('OMP_WAIT_POLICY', '<unset>')))\n"
         "import latentspace.cli.entry as entry\n"
         "assert 'torch' not in sys.modules, 'torch loaded before the thread settings'\n"
         "sys.argv = ['latentspace', '--help']\n"
         "entry.main()\n")


def run_probe(env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout  # the command really ran
    return done.stdout.strip().splitlines()[-1]


def test_the_console_script_plans_threads_before_torch_loads(burners):
    assert run_probe(clean_env()) == "policy=PASSIVE"
    assert run_probe(clean_env(OMP_WAIT_POLICY="ACTIVE")) == "policy=ACTIVE"
