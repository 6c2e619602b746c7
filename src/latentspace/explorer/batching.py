"""Decode requests answered in batches: codes that arrive while a batch is being decoded wait and go together in
the next one, so twenty pointers moving at once cost one model call, not twenty.

Nothing waits on purpose: a lone request is decoded at once, as a batch of one. One worker thread runs the model
at a time, so concurrent requests never fight over the cores, and the event loop only parses and answers HTTP.
Measured on 2 cores with 20 concurrent clients (benchmarks/explorer_latency.py, 64x64 RGB): the server's CPU
per request halves against one worker thread per request.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import anyio.to_thread
import numpy as np

Result = TypeVar("Result")


class Batcher(Generic[Result]):
    """``await batcher(z, k)`` -> ``work([(z, k), ...])[i]``: ``work`` runs in a worker thread on every request
    that arrived while the previous batch ran. z: one code (D,); k: any per-request setting."""

    def __init__(self, work: Callable[[Sequence[tuple[np.ndarray, int]]], Sequence[Result]]) -> None:
        self.work = work
        # Per event loop (uvicorn has one; a test client may start one per request), the requests waiting.
        self._waiting: dict[asyncio.AbstractEventLoop, list[tuple[np.ndarray, int, asyncio.Future]]] = {}

    async def __call__(self, z: np.ndarray, k: int) -> Result:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if loop in self._waiting:
            self._waiting[loop].append((z, k, future))  # the running drain takes it in its next batch
        else:
            self._waiting[loop] = [(z, k, future)]
            loop.create_task(self._drain(loop))
        return await future

    async def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        while self._waiting[loop]:
            batch, self._waiting[loop] = self._waiting[loop], []
            try:
                results = await anyio.to_thread.run_sync(self.work, [(z, k) for z, k, _ in batch])
            except Exception as e:  # noqa: BLE001  every request of the batch gets the error, none hangs
                for *_, future in batch:
                    if not future.done():  # done: its client went away and the request was cancelled
                        future.set_exception(e)
                continue
            for (*_, future), result in zip(batch, results):
                if not future.done():
                    future.set_result(result)
        del self._waiting[loop]
