"""Fuzz every parser that reads outside bytes, many cases each, with a time and memory limit per parser.

    python benchmarks/fuzz.py [--cases 10000] [--only idx,image] [--seed 0] [--hang-s 10] [--out DIR]

The targets and their case strategies are the ones tests/test_fuzz.py runs (tests/fuzz_targets.py). Here
each parser runs in its own fresh process, so its peak RSS is its own, and a watchdog in this process kills
a worker whose case runs past ``--hang-s`` (counted as a hang, then a new worker carries on with the
remaining cases). A case that raises anything but a one-line ValueError, or loads to a wrong result, is a
crash; the first of each kind (exception and place) is written to ``--out`` as a pickled case, to replay
with ``fuzz_targets.outcome(TARGETS[name], pickle.load(f), empty_folder)``. Targets: 0 crashes, 0 hangs and
peak RSS under 1 GB per parser; the exit status is 1 when one is missed.
"""
from __future__ import annotations

import argparse
import importlib
import multiprocessing as mp
import pickle
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the shared targets

RSS_LIMIT_MB = 1024


def worker(name: str, cases: int, seed: int, conn) -> None:
    """Run ``cases`` cases of one target, telling the parent before and after each one."""
    import resource
    import warnings

    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    from fuzz_targets import TARGETS, outcome

    warnings.simplefilter("ignore")  # decoders warn about odd files; only exceptions count here
    target = TARGETS[name]
    for module in target.modules:
        importlib.import_module(module)

    @hypothesis_seed(seed)
    @settings(max_examples=cases, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=target.cases())
    def run(case):
        conn.send(("start", pickle.dumps(case)))
        with tempfile.TemporaryDirectory() as workdir:
            crash = outcome(target, case, Path(workdir))  # never raises: hypothesis keeps generating
        conn.send(("done", crash, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))

    run()
    conn.send(("end", None, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


class Tally:
    def __init__(self, name: str, out: Path):
        self.name, self.out = name, out
        self.cases = self.hangs = 0
        self.crashes: dict[str, int] = {}  # kind -> count
        self.peak_kb = 0
        self.slowest_s = 0.0

    def record_crash(self, crash: str, case_pickle: bytes) -> None:
        from fuzz_targets import crash_kind

        kind = crash_kind(crash)
        if kind not in self.crashes:
            self.out.mkdir(parents=True, exist_ok=True)
            path = self.out / f"{self.name}-crash-{len(self.crashes)}.pickle"
            path.write_bytes(case_pickle)
            print(f"  {self.name}: {crash}\n    case: {path}", flush=True)
        self.crashes[kind] = self.crashes.get(kind, 0) + 1

    def record_hang(self, case_pickle: bytes, hang_s: float) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / f"{self.name}-hang-{self.hangs}.pickle"
        path.write_bytes(case_pickle)
        if self.hangs < 5:  # every case is kept; the first few are named here
            print(f"  {self.name}: a case ran over {hang_s:g} s\n    case: {path}", flush=True)
        self.hangs += 1


def fuzz_one(name: str, cases: int, seed: int, hang_s: float, out: Path) -> Tally:
    """Run one target's cases in worker processes, restarting a worker after a hang."""
    ctx = mp.get_context("spawn")  # a fresh interpreter: the peak RSS is this parser's alone
    tally = Tally(name, out)
    restarts = 0
    while tally.cases < cases:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=worker, args=(name, cases - tally.cases, seed + restarts, child), daemon=True)
        proc.start()
        child.close()
        current, started = b"", None
        while True:
            # Before the first case the worker imports its parser (torch for some): allow that 120 s.
            if not parent.poll(hang_s if started is not None else 120):
                if started is not None:
                    tally.record_hang(current, hang_s)
                    tally.cases += 1
                proc.kill()
                break
            try:
                kind, payload, *rest = parent.recv()
            except EOFError:  # the worker died (out of memory, a segfault): the case at hand is a crash
                proc.join(5)
                tally.record_crash(f"worker died with exit code {proc.exitcode}: see its output above", current)
                tally.cases += 1
                break
            if kind == "start":
                current, started = payload, time.perf_counter()
            elif kind == "done":
                tally.slowest_s = max(tally.slowest_s, time.perf_counter() - started)
                tally.cases += 1
                tally.peak_kb = max(tally.peak_kb, rest[0])
                started = None
                if payload is not None:
                    tally.record_crash(payload, current)
            else:  # "end": hypothesis ran every case it was asked for
                tally.peak_kb = max(tally.peak_kb, rest[0])
                tally.cases = cases
                break
        proc.join(5)
        restarts += 1
    return tally


def main() -> int:
    from fuzz_targets import TARGETS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases per parser")
    parser.add_argument("--only", default="", help=f"comma-separated targets (default all: {', '.join(TARGETS)})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hang-s", type=float, default=10.0, help="a case running longer is a hang")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "latentspace-fuzz",
                        help="where reproducers are written")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or list(TARGETS)
    unknown = set(names) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; choose from {', '.join(TARGETS)}")
    rows = []
    for name in names:
        start = time.perf_counter()
        print(f"{name} ({TARGETS[name].parser}): {args.cases} cases", flush=True)
        tally = fuzz_one(name, args.cases, args.seed, args.hang_s, args.out)
        rows.append((tally, time.perf_counter() - start))
    print(f"\n{'parser':<12} {'cases':>7} {'crashes':>8} {'kinds':>6} {'hangs':>6} {'peak RSS MB':>12} "
          f"{'slowest s':>10} {'wall s':>8}")
    ok = True
    for t, wall in rows:
        peak_mb = t.peak_kb / 1024
        ok &= not t.crashes and not t.hangs and peak_mb < RSS_LIMIT_MB
        print(f"{t.name:<12} {t.cases:>7} {sum(t.crashes.values()):>8} {len(t.crashes):>6} {t.hangs:>6} "
              f"{peak_mb:>12.0f} {t.slowest_s:>10.2f} {wall:>8.0f}")
    print(f"\ntargets: 0 crashes, 0 hangs, peak RSS < {RSS_LIMIT_MB} MB per parser: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
