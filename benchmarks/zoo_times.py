"""Issue 23's targets, from the built wheel: the explorer of zoo:faces answering, the demo from the zoo, and the
notebook, each timed from the command's start on this machine.

    python benchmarks/zoo_times.py [--repeats 3] [--skip-notebook]

The wheel is built from the checkout and installed with ``pip install --no-deps --target`` into a temporary
folder that comes first on PYTHONPATH, so the commands run the wheel's code and the wheel's zoo (the
dependencies are this virtualenv's). Each repeat uses an empty LATENTSPACE_CACHE, so the first use's copy of the
model into the cache is inside every figure. Printed: each figure's median over the repeats (and all of them),
beside the baseline measured in the same run, and the target:

- explore zoo:faces: seconds from starting ``latentspace explore zoo:faces`` to the first answer of ``GET /``;
  baseline: the same with the copy already in the cache (a second start). Target 5 s.
- demo --zoo: seconds of ``latentspace demo --zoo`` to a complete report; baseline: ``latentspace report
  zoo:faces`` alone on the warm copy, the part of the demo that is the page. Target 30 s.
- the notebook: seconds of nbclient executing notebooks/what_is_latent_space.ipynb; baseline: demo --zoo.
  Target 180 s.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"explore zoo:faces": 5.0, "demo --zoo": 30.0, "notebook": 180.0}


def install_wheel(work: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(work / "wheel"), str(ROOT)], check=True)
    (wheel,) = (work / "wheel").glob("latentspace-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(work / "site"),
                    str(wheel)], check=True)
    print(f"wheel {wheel.name}: {wheel.stat().st_size / 1e6:.1f} MB, installed into {work / 'site'}")
    return work / "site"


def env_for(site: Path, cache: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(site), "LATENTSPACE_CACHE": str(cache)}


def explore_seconds(env: dict[str, str], port: int) -> float:
    start = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "latentspace", "explore", "zoo:faces", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as answer:
                    answer.read()
                return time.perf_counter() - start
            except OSError:
                if server.poll() is not None:
                    raise SystemExit("the explorer exited before answering") from None
                time.sleep(0.05)
    finally:
        server.terminate()
        server.wait(10)


def timed(args: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "latentspace", *args], env=env, cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def notebook_seconds(env: dict[str, str], cwd: Path) -> float:
    code = ("import nbformat, nbclient, sys; nb = nbformat.read(sys.argv[1], 4); "
            "nbclient.NotebookClient(nb, timeout=600, kernel_name='python3', "
            "resources={'metadata': {'path': sys.argv[2]}}).execute()")
    path_env = {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(ROOT / "notebooks" / "what_is_latent_space.ipynb"), str(cwd)],
                   env=path_env, check=True)
    return time.perf_counter() - start


def report(name: str, values: list[float], baseline: list[float], baseline_name: str) -> None:
    median, base = statistics.median(values), statistics.median(baseline)
    verdict = "met" if median <= TARGETS[name] else "MISSED"
    print(f"{name}: median {median:.1f} s ({', '.join(f'{v:.1f}' for v in values)}); baseline ({baseline_name}) "
          f"{base:.1f} s, ratio {median / base:.2f}; target {TARGETS[name]:.0f} s: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-notebook", action="store_true")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        site = install_wheel(work)
        cold, warm, demo, rep, nb = [], [], [], [], []
        for i in range(args.repeats):
            env = env_for(site, work / f"cache{i}")
            cold.append(explore_seconds(env, args.port))
            warm.append(explore_seconds(env, args.port))
            demo.append(timed(["demo", "--zoo", "--out", str(work / f"demo{i}")], env, work))
            rep.append(timed(["report", "zoo:faces", "--out", str(work / f"report{i}.html")], env, work))
            if not args.skip_notebook:
                nb.append(notebook_seconds(env, work))
        report("explore zoo:faces", cold, warm, "copy already cached")
        report("demo --zoo", demo, rep, "report zoo:faces alone")
        if nb:
            report("notebook", nb, demo, "demo --zoo")


if __name__ == "__main__":
    main()
