"""Micro-batching: the samples of concurrent /v1/predict requests share one forward pass.

A forward pass for one image reads the whole 784x512 kernel (1.6 MB) to use it once; for
eight images it costs about twice as much as for one (bench/). Requests that reach the
forward pass in the same turn of the event loop are run together: the first one schedules
a flush with `call_soon`, which runs after every task already queued in that turn. The
wait is therefore bounded by one loop turn, never a timer: a lone request is not delayed,
and under load the batch grows by itself with the number of requests in flight.
"""

from __future__ import annotations

import asyncio

import numpy as np

from service.inference import forward
from service.registry import LoadedModel


class MicroBatcher:
    """Runs the samples handed to `probabilities` in the same loop turn as one batch per
    model version, in chunks of at most `max_batch`."""

    def __init__(self, max_batch: int = 64) -> None:
        self.max_batch = max_batch
        self._waiting: dict[int, tuple[LoadedModel, list[np.ndarray], list[asyncio.Future]]] = {}

    async def probabilities(self, loaded: LoadedModel, sample: np.ndarray) -> np.ndarray:
        """The model's output (10,) for one (784,) sample, computed in a shared batch."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._flush)
        # Keyed by identity: a version swap mid-turn must not mix two models in one batch.
        _, samples, futures = self._waiting.setdefault(id(loaded), (loaded, [], []))
        samples.append(sample)
        futures.append(future)
        return await future

    def _flush(self) -> None:
        waiting, self._waiting = self._waiting, {}
        for loaded, samples, futures in waiting.values():
            for start in range(0, len(samples), self.max_batch):
                chunk = slice(start, start + self.max_batch)
                self._run(loaded, samples[chunk], futures[chunk])

    @staticmethod
    def _run(loaded: LoadedModel, samples: list[np.ndarray], futures: list[asyncio.Future]) -> None:
        try:
            rows = forward(loaded, np.stack(samples))
        except Exception as exc:  # every waiting request gets the error, not a hang
            for future in futures:
                if not future.done():
                    future.set_exception(exc)
            return
        for future, row in zip(futures, rows, strict=True):
            if not future.done():  # a request that timed out has been cancelled
                future.set_result(row)
