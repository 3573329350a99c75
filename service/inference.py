"""From image bytes to predictions: preprocessing placement and the batched forward pass."""

from __future__ import annotations

import numpy as np
from starlette.concurrency import run_in_threadpool

from service.errors import ServiceError
from service.metrics import (
    BATCH_SIZE,
    FORWARD_LATENCY,
    PREPROCESS_LATENCY,
    REJECTED,
    record_predictions,
)
from service.preprocess import preprocess
from service.registry import LoadedModel
from service.schemas import BatchItem, Prediction


def timed_preprocess(data: bytes, max_pixels: int) -> np.ndarray:
    """`preprocess`, observed as the inference stage 'preprocess'."""
    with PREPROCESS_LATENCY.time():
        return preprocess(data, max_pixels)


async def to_sample(data: bytes, max_pixels: int, offload_bytes: int) -> np.ndarray:
    """Preprocess inline when the upload is small; big ones decode in a worker thread,
    so a 12 MP JPEG does not stall every other request on this event loop."""
    if len(data) > offload_bytes:
        return await run_in_threadpool(timed_preprocess, data, max_pixels)
    return timed_preprocess(data, max_pixels)


def forward(loaded: LoadedModel, samples: np.ndarray) -> np.ndarray:
    """One forward pass over (N, 784) samples: (N, 10) probabilities, timed and counted."""
    with FORWARD_LATENCY.time():
        probabilities = loaded.model.predict(samples.astype(np.float32, copy=False))
    BATCH_SIZE.observe(len(samples))
    return probabilities


def predictions(loaded: LoadedModel, probabilities: np.ndarray) -> list[Prediction]:
    """A Prediction per row of (N, 10) probabilities; the predicted digits are counted."""
    digits = probabilities.argmax(axis=1).tolist()
    confidences = probabilities.max(axis=1).tolist()
    record_predictions(digits, confidences)
    return [
        Prediction(
            digit=digit,
            confidence=round(confidence, 6),
            probabilities=[round(p, 6) for p in row],
            model=loaded.name,
            version=loaded.version,
        )
        for digit, confidence, row in zip(digits, confidences, probabilities.tolist(), strict=True)
    ]


async def classify_batch(
    loaded: LoadedModel, files: list[tuple[str | None, bytes]], max_pixels: int, offload: int
) -> list[BatchItem]:
    """Preprocess each file (errors stay with their file), then one forward pass."""
    items: list[BatchItem] = []
    samples: list[np.ndarray] = []
    for name, data in files:
        try:
            samples.append(await to_sample(data, max_pixels, offload))
            items.append(BatchItem(filename=name))
        except ServiceError as exc:
            REJECTED.labels(reason=exc.code).inc()
            items.append(BatchItem(filename=name, error=exc.code, detail=exc.detail))
    answers = iter(predictions(loaded, forward(loaded, np.stack(samples))) if samples else [])
    for item in items:
        if item.error is None:
            item.prediction = next(answers)
    return items
