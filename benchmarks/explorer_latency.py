"""Latency of the explorer's decode endpoint under 20 concurrent clients on loopback, for a fixed time.

    python benchmarks/explorer_latency.py [--seconds 10] [--clients 20] [--threads 1] [--interval S]
                                          [--client asyncio|httpx] [--same-process] [--run DIR] [--n 2000]

A tiny 64x64 RGB faces model (the default ModelConfig at that shape: latent 16, width 16, hidden 256; one epoch
on ``--n`` generated faces) is trained once and kept under the temp folder (or ``--run`` names one to reuse).
The explorer is built with ``create_app`` (its startup time is printed) and served by uvicorn in this process on
127.0.0.1, as ``latentspace explore`` serves it (torch on ``--threads`` 1).

The clients are 20 pointers in a second process, as browsers would be. Each keeps one keep-alive HTTP/1.1
connection and posts positions (uniform over the map's extent, seeded) to ``POST /api/maps/pca/decode``, sending
the next as soon as the answer is read: a closed loop with no think time, as the page keeps at most one decode
in flight per pointer (``--interval S``: at most one request per S seconds, a pointer's event rate instead).
Every answer is the decoded PNG, the code and the 8 nearest training images. By default the clients speak
HTTP with asyncio streams, about 0.1 ms of CPU per request, since on a 2-core machine whatever the clients
spend is taken from the server; ``--client httpx`` uses httpx threads, ``--same-process`` puts the clients beside
the server (sharing its GIL). After ``--warmup`` seconds not counted, requests are timed for ``--seconds``; then
the clients stop, the server shuts down and the figures are printed: p50, p95, requests/s, errors, against the
target, and the server's CPU time per request.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import httpx
import numpy as np
import torch
import uvicorn

from latentspace.data import load
from latentspace.explorer import create_app
from latentspace.explorer.app import listen
from latentspace.models import ModelConfig, build
from latentspace.train import TrainConfig, fit

TARGET_P95_MS = 25.0
DEFAULT_RUN = Path(tempfile.gettempdir()) / "latentspace-bench" / "explorer-faces64"


def faces_run(run_dir: Path, n: int) -> Path:
    """A 64x64 RGB faces run, trained for one epoch on ``n`` faces unless ``run_dir`` already holds one."""
    if (run_dir / "model.safetensors").is_file():
        return run_dir
    info = {"name": "faces", "size": 64, "channels": 3, "data_dir": None, "seed": 0, "n": n}
    train, test = (load("faces", split=s, size=64, channels=3, seed=0, n=n) for s in ("train", "test"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build(ModelConfig(image_shape=(3, 64, 64), latent_dim=16))
    print(f"training a 64x64 faces model on {n} images into {run_dir} (once)")
    fit(model, train, test, TrainConfig(epochs=1, batch_size=50, seed=0), run_dir, "cpu", data_info=info)
    return run_dir


def serve(app) -> tuple[uvicorn.Server, threading.Thread, str]:
    sock = listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return server, thread, f"http://127.0.0.1:{sock.getsockname()[1]}"


PATH = "/api/maps/pca/decode"


def httpx_client(url: str, bounds: np.ndarray, seed: int, start: float, stop: float, interval: float,
                 out: list) -> None:
    """One pointer as a thread with a keep-alive httpx connection (see ``pointer``)."""
    rng = np.random.default_rng(seed)
    with httpx.Client(base_url=url, timeout=10.0) as http:
        while (sent := time.perf_counter()) < stop:
            x, y = rng.uniform(bounds[0], bounds[1])
            try:
                ok = http.post(PATH, json={"x": float(x), "y": float(y)}).status_code == 200
            except httpx.HTTPError:
                ok = False
            out.append((time.perf_counter() - sent if sent >= start else float("nan"), ok))
            time.sleep(max(0.0, sent + interval - time.perf_counter()))


async def pointer(host: str, port: int, bounds: np.ndarray, seed: int, start: float, stop: float, interval: float,
                  out: list) -> None:
    """One pointer: post random map positions on one keep-alive HTTP/1.1 connection until ``stop``, at most one
    per ``interval`` s, and record (latency_s, ok) per request (latency NaN for the warm-up's). The request is
    written and the answer read (status line, headers, Content-Length bytes of body) with asyncio streams."""
    rng = np.random.default_rng(seed)
    connection = None
    while (sent := time.perf_counter()) < stop:
        x, y = rng.uniform(bounds[0], bounds[1])
        body = json.dumps({"x": float(x), "y": float(y)}).encode()
        try:
            if connection is None:
                connection = await asyncio.open_connection(host, port)
            reader, writer = connection
            writer.write(b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (PATH.encode(), host.encode(), port, len(body), body))
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            answer = await reader.readexactly(length)
            ok = status.split(b" ")[1:2] == [b"200"] and answer.startswith(b'{"z":')
        except (OSError, asyncio.IncompleteReadError, ValueError):
            ok, connection = False, None
        out.append((time.perf_counter() - sent if sent >= start else float("nan"), ok))
        await asyncio.sleep(max(0.0, sent + interval - time.perf_counter()))
    if connection is not None:
        connection[1].close()


def clients(url: str, bounds: np.ndarray, n: int, warmup: float, seconds: float, interval: float, kind: str,
            pipe=None) -> list[tuple[float, bool]]:
    """Run ``n`` pointers (asyncio tasks, or httpx threads) for ``warmup`` + ``seconds``: every request's
    (latency_s or NaN during the warm-up, ok). In a child process the results go back through ``pipe``."""
    torch.set_num_threads(1)  # the clients do no tensor work
    results: list[list[tuple[float, bool]]] = [[] for _ in range(n)]
    start = time.perf_counter() + warmup
    if kind == "httpx":
        workers = [threading.Thread(target=httpx_client, args=(url, bounds, i, start, start + seconds, interval,
                                                               results[i])) for i in range(n)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    else:
        host, port = url.removeprefix("http://").split(":")

        async def everyone() -> None:
            await asyncio.gather(*(pointer(host, int(port), bounds, i, start, start + seconds, interval, results[i])
                                   for i in range(n)))

        asyncio.run(everyone())
    done = [r for rs in results for r in rs]
    if pipe is not None:
        pipe.send(done)
    return done


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0, help="measured time")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of load before timing starts")
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads of the server (1, as `latentspace "
                   "explore` serves: measured faster than 2 on 2 cores, where the HTTP loop needs the other)")
    p.add_argument("--run", type=Path, default=DEFAULT_RUN, help="64x64 faces run to reuse (trained if absent)")
    p.add_argument("--n", type=int, default=2000, help="faces per split when training")
    p.add_argument("--interval", type=float, default=0.0, help="least seconds between one client's requests "
                   "(0: closed loop)")
    p.add_argument("--same-process", action="store_true", help="run the clients in the server's process")
    p.add_argument("--client", choices=("asyncio", "httpx"), default="asyncio",
                   help="asyncio streams (about 0.1 ms of CPU per request) or httpx threads (several times more, "
                   "taken from the server on a 2-core machine)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    run_dir = faces_run(args.run, args.n)
    began = time.perf_counter()
    app = create_app(run_dir)
    startup = time.perf_counter() - began
    explorer = app.state.explorer
    xy = explorer.maps["pca"].xy
    bounds = np.stack([xy.min(0), xy.max(0)])
    server, thread, url = serve(app)
    print(f"cpu, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{explorer.image_shape} images, latent {explorer.latent_dim}, {len(explorer.train):,} train codes; "
          f"create_app {startup:.2f} s")

    cpu = time.process_time()
    if args.same_process:
        done = clients(url, bounds, args.clients, args.warmup, args.seconds, args.interval, args.client)
    else:
        receive, send = multiprocessing.Pipe(duplex=False)
        child = multiprocessing.get_context("spawn").Process(
            target=clients, args=(url, bounds, args.clients, args.warmup, args.seconds, args.interval, args.client,
                                  send))
        child.start()
        done = receive.recv()
        child.join()
    cpu = time.process_time() - cpu
    served = len(done)
    done = [(t, ok) for t, ok in done if not math.isnan(t)]  # the timed ones (the warm-up's carry NaN)
    server.should_exit = True
    thread.join(10)

    latency_ms = np.array([t for t, _ in done]) * 1e3
    errors = sum(not ok for _, ok in done)
    p50, p95 = np.percentile(latency_ms, [50, 95]) if len(done) else (float("nan"),) * 2
    verdict = "meets" if p95 <= TARGET_P95_MS and errors == 0 else "misses"
    where = f"{args.client}, " + ("in the server's process" if args.same_process else "in a second process")
    pace = f"at most one request per {args.interval:g} s each" if args.interval else "closed loop"
    print(f"{args.clients} clients ({where}, {pace}) for {args.seconds:g} s on loopback: {len(done):,} requests, "
          f"{len(done) / args.seconds:,.0f} requests/s")
    print(f"  p50 {p50:.1f} ms   p95 {p95:.1f} ms   errors {errors}   "
          f"(target: p95 <= {TARGET_P95_MS:g} ms with 0 errors: {verdict})")
    if not args.same_process:
        print(f"  server process CPU {cpu / max(served, 1) * 1e3:.2f} ms per request ({served:,} served, warm-up "
              f"included): at most {served / cpu if cpu else float('nan'):,.0f} requests/s per core")


if __name__ == "__main__":
    main()
