"""Micro-batching: the images of concurrent /v1/predict requests (and of /v2 inference
requests) are preprocessed as one stack and share one forward pass.

A forward pass for one image reads the whole 784x512 kernel (1.6 MB) to use it once; for
eight images it costs about twice as much as for one, and preprocessing eight digits as a
stack costs 7 us each instead of 32 (bench/). The first request to hand over its item
schedules a flush two turns of the event loop later (`call_soon` of a `call_soon`):
every request that arrives before then joins it, those queued in this turn and those
whose bytes the loop reads when it polls for I/O between the two. The wait is bounded by
two loop turns, never a timer: a lone request is delayed by microseconds, and under load
the batch grows by itself with the number of requests in flight. Flushing after one turn
instead made batches of 3-4 where two make 5-7 (16 connections on 2 workers), and 10-15%
fewer predictions a second (BENCHMARKS.md, "Issue 14, second pass").

What is batched is the batcher's item type: uploads (PNG digits, decoded together, and
decoded pictures; then preprocessed and run), or samples that are MNIST rows already (only
run): one batcher for each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import numpy as np

from service.registry import LoadedModel

Item = TypeVar("Item")  # what a request hands over: a PNG's bytes, a Picture, or a (784,) sample
# Preprocess items together and run those holding a digit in one pass: their (M, 10)
# probabilities in order, and for each item None (one of the rows is its) or the error it
# met, which fails only its own request (`service.inference.classify_uploads`).
Classify = Callable[[LoadedModel, list[Item]], tuple[np.ndarray, list[Exception | None]]]


class MicroBatcher(Generic[Item]):
    """Runs the items handed to `classify` within two loop turns as one batch per model
    version, in chunks of at most `max_batch`, through the `classify` function it is given
    (so it imports nothing of the inference it serves)."""

    def __init__(self, classify: Classify[Item], max_batch: int = 64) -> None:
        self.run_batch = classify
        self.max_batch = max_batch
        self._waiting: dict[int, tuple[LoadedModel, list[Item], list[asyncio.Future]]] = {}

    async def classify(self, loaded: LoadedModel, image: Item) -> np.ndarray:
        """The model's output (10,) for one item, computed in a shared batch; BlankImage
        when the item holds no digit."""
        return await self._enqueue(loaded, image)

    async def classify_all(self, loaded: LoadedModel, items: Sequence[Item]) -> np.ndarray:
        """The model's outputs (N, 10) for several items, in order, computed in the shared
        batch of this loop turn; the first item's error, if any."""
        answers = await asyncio.gather(
            *(self._enqueue(loaded, item) for item in items), return_exceptions=True
        )
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        return np.stack(answers)

    def _enqueue(self, loaded: LoadedModel, image: Item) -> asyncio.Future[np.ndarray]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        if not self._waiting:
            loop.call_soon(loop.call_soon, self._flush)
        # Keyed by identity: a version swap mid-turn must not mix two models in one batch.
        _, images, futures = self._waiting.setdefault(id(loaded), (loaded, [], []))
        images.append(image)
        futures.append(future)
        return future

    def _flush(self) -> None:
        waiting, self._waiting = self._waiting, {}
        for loaded, images, futures in waiting.values():
            for start in range(0, len(images), self.max_batch):
                chunk = slice(start, start + self.max_batch)
                self._run(loaded, images[chunk], futures[chunk])

    def _run(self, loaded: LoadedModel, images: list[Item], futures: list[asyncio.Future]) -> None:
        try:
            rows, failures = self.run_batch(loaded, images)
        except Exception as exc:  # not an error of one item: a bug, or a broken model
            if len(images) > 1:  # one odd image must not fail the requests it met: alone
                for image, future in zip(images, futures, strict=True):
                    self._run(loaded, [image], [future])
            elif not futures[0].done():  # its request gets the error, not a hang
                futures[0].set_exception(exc)
            return
        answers = iter(rows)
        for future, failure in zip(futures, failures, strict=True):
            row = None if failure is not None else next(answers)
            if future.done():  # a request that timed out has been cancelled
                continue
            if failure is not None:
                future.set_exception(failure)
            else:
                future.set_result(row)
