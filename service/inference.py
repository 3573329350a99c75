"""From image bytes to predictions: where each stage runs, and the batched forward pass.

Stages: decode (`imaging.decode`), preprocess (`imaging.mnist.to_mnist_many`) and forward.
An MNIST-like upload (a small 28x28 greyscale picture) costs microseconds at every stage:
it is handed to the micro-batcher (`service.batching`), which decodes the PNGs of two loop
turns together, preprocesses them as a stack and runs them in one forward pass (an upload
in another format is decoded on the event loop first).
Any other upload (a photo, a canvas, a scan) costs a millisecond or more to find its digit
in: it is decoded, preprocessed and run in a worker thread, so the event loop keeps
answering everyone else. A batch request is its own stack, in a worker thread as soon as
one of its pictures needs the full pipeline.
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from PIL import Image
from starlette.concurrency import run_in_threadpool

from service.batching import MicroBatcher
from service.errors import BlankImage, ServiceError
from service.imaging.decode import Picture, declared_pixels, decode, decode_many
from service.imaging.mnist import SIDE, Box, Samples, is_mnist_like, to_mnist_many
from service.imaging.png import declares_plain_grey
from service.metrics import (
    BATCH_SIZE,
    DECODE_LATENCY,
    FORWARD_LATENCY,
    PREPROCESS_LATENCY,
    REJECTED,
    record_predictions,
)
from service.registry import LoadedModel
from service.schemas import BatchItem, CropBox, Explanation, Prediction

T = TypeVar("T")
INLINE_PIXELS = 128 * 128  # decoded on the event loop at most (well under a millisecond)


@dataclass(frozen=True)
class Reading:
    """The model's output (10,) for one upload and, when asked for, what it saw."""

    probabilities: np.ndarray
    explanation: Explanation | None = None


async def run_maybe_offloaded(offload: bool, function: Callable[..., T], *args: Any) -> T:
    """`function(*args)`, in a worker thread when `offload`, inline otherwise."""
    return await run_in_threadpool(function, *args) if offload else function(*args)


def timed_decode(data: bytes, max_pixels: int) -> Picture:
    """`decode`, observed as the inference stage 'decode'."""
    with DECODE_LATENCY.time():
        return decode(data, max_pixels)


def timed_decode_many(datas: list[bytes], max_pixels: int) -> list[Picture | ServiceError]:
    """`decode_many`, observed as one call of the inference stage 'decode'."""
    with DECODE_LATENCY.time():
        return decode_many(datas, max_pixels)


def timed_forward(loaded: LoadedModel, samples: np.ndarray) -> np.ndarray:
    """One forward pass over (N, 784) samples: (N, 10) probabilities, timed, and its
    predictions counted (by digit and confidence) here, once a pass."""
    with FORWARD_LATENCY.time():
        probabilities = loaded.model.predict(samples.astype(np.float32, copy=False))
    BATCH_SIZE.observe(len(samples))
    digits = probabilities.argmax(axis=1)
    record_predictions(
        np.bincount(digits, minlength=10).tolist(), probabilities.max(axis=1).tolist()
    )
    return probabilities


def classify_samples(
    loaded: LoadedModel, rows: list[np.ndarray]
) -> tuple[np.ndarray, list[ServiceError | None]]:
    """Run (784,) samples that are MNIST rows already in one pass: their (N, 10)
    probabilities, none failing. The row batcher's work."""
    return timed_forward(loaded, np.stack(rows)), [None] * len(rows)


def classify_pictures(loaded: LoadedModel, pictures: list[Picture]) -> tuple[np.ndarray, Samples]:
    """Preprocess pictures together and run those that hold a digit in one pass: their
    (M, 10) probabilities in order, and the samples (with which pictures are blank)."""
    with PREPROCESS_LATENCY.time():
        samples = to_mnist_many(pictures)
    rows = samples.rows[[not empty for empty in samples.blank]]
    if not len(rows):
        return np.empty((0, 10), np.float32), samples
    return timed_forward(loaded, rows), samples


def classify_uploads(
    loaded: LoadedModel, items: list[Picture | bytes], max_pixels: int
) -> tuple[np.ndarray, list[ServiceError | None]]:
    """Preprocess together and run in one pass items that are decoded pictures or the
    bytes of MNIST digits saved as PNG (28x28 plain greyscale, `png.declares_plain_grey`),
    which are decoded here together, in one call of Pillow's decoder (`decode_many`, within
    `max_pixels`): the single-image batcher's work. Their (M, 10) probabilities in order,
    and for each item None (it has a row) or its error (undecodable; no digit), which
    costs the other items nothing."""
    failures: list[ServiceError | None] = [None] * len(items)
    uploads = {i: item for i, item in enumerate(items) if isinstance(item, bytes)}
    decoded = timed_decode_many(list(uploads.values()), max_pixels) if uploads else []
    found = dict(zip(uploads, decoded, strict=True))
    pictures: dict[int, Picture] = {}
    for index, item in enumerate(items):
        picture = found.get(index, item)
        if isinstance(picture, ServiceError):
            failures[index] = picture
        else:
            pictures[index] = picture
    if not pictures:
        return np.empty((0, 10), np.float32), failures
    rows, samples = classify_pictures(loaded, list(pictures.values()))
    for index, blank in zip(pictures, samples.blank, strict=True):
        if blank:
            failures[index] = BlankImage.no_digit()
    return rows, failures


def upload_batcher(max_pixels: int, max_batch: int) -> MicroBatcher[Picture | bytes]:
    """The batcher of single uploads (`read_upload`): `classify_uploads` within
    `max_pixels`, at most `max_batch` items a pass."""
    return MicroBatcher(functools.partial(classify_uploads, max_pixels=max_pixels), max_batch)


def _read_picture(loaded: LoadedModel, picture: Picture, explain: bool) -> Reading:
    """Preprocess and run one decoded upload (in a worker thread)."""
    probabilities, samples = classify_pictures(loaded, [picture])
    if samples.blank[0]:
        raise BlankImage.no_digit()
    return Reading(probabilities[0], _explain(samples, 0) if explain else None)


def _read_alone(loaded: LoadedModel, data: bytes, max_pixels: int, explain: bool) -> Reading:
    """Decode, preprocess and run one upload (in a worker thread)."""
    return _read_picture(loaded, timed_decode(data, max_pixels), explain)


def is_small(data: bytes, offload: int) -> bool:
    """Whether an upload may be decoded on the event loop: at most `offload` bytes and,
    by its header, at most INLINE_PIXELS pixels (a small file can declare millions)."""
    if len(data) > offload:
        return False
    pixels = declared_pixels(data)
    return pixels is not None and pixels <= INLINE_PIXELS


async def read_upload(
    loaded: LoadedModel,
    data: bytes,
    max_pixels: int,
    offload: int,
    batcher: MicroBatcher,
    explain: bool = False,
) -> Reading:
    """The model's reading of one uploaded image. An MNIST digit saved as PNG joins the
    batcher's shared pass as it is, and is decoded there with the others; any other small
    upload is decoded here and, if MNIST-like, joins the pass as a picture; any other is
    decoded (if not yet) and preprocessed alone in a worker thread. The batcher is an
    `upload_batcher`."""
    if not explain and is_small(data, offload):
        if declares_plain_grey(data, SIDE, SIDE):
            return Reading(await batcher.classify(loaded, data))
        picture = timed_decode(data, max_pixels)
        if is_mnist_like(picture):
            return Reading(await batcher.classify(loaded, picture))
        return await run_in_threadpool(_read_picture, loaded, picture, explain)
    return await run_in_threadpool(_read_alone, loaded, data, max_pixels, explain)


def predictions(
    loaded: LoadedModel,
    probabilities: np.ndarray,
    explanations: list[Explanation | None] | None = None,
) -> list[Prediction]:
    """A Prediction per row of (N, 10) probabilities, with its explanation if given (the
    forward pass counted them already)."""
    digits = probabilities.argmax(axis=1).tolist()
    # Rounded as doubles in one call: float32 rounded to 6 decimals would print as
    # 0.12345699965953827, and round() per value costs 10 calls per image.
    rounded = np.round(probabilities.astype(np.float64), 6).tolist()
    return [
        Prediction(
            digit=digit,
            confidence=row[digit],
            probabilities=row,
            model=loaded.name,
            version=loaded.version,
            explanation=explanation,
        )
        for digit, row, explanation in zip(
            digits, rounded, explanations or [None] * len(digits), strict=True
        )
    ]


def explanation(sample: np.ndarray, box: Box) -> Explanation:
    """What the model saw: the sample (784,) in [0, 1] as a base64 28x28 greyscale PNG,
    and the digit's box in the upload."""
    pixels = np.rint(sample.reshape(SIDE, SIDE) * 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    left, top, width, height = box
    return Explanation(
        sample_png=base64.b64encode(out.getvalue()).decode("ascii"),
        box=CropBox(left=left, top=top, width=width, height=height),
    )


@dataclass(frozen=True)
class Readings:
    """The model's readings of several uploads: the uploads that hold a digit (`found`,
    indices in order), their (M, 10) probabilities and, when asked for, explanations;
    and the error each other upload met."""

    found: list[int]
    probabilities: np.ndarray
    explanations: list[Explanation | None] | None
    errors: dict[int, ServiceError]


async def read_uploads(
    loaded: LoadedModel, datas: list[bytes], max_pixels: int, offload: int, explain: bool = False
) -> Readings:
    """Decode uploads together, preprocess them as stacks and run them in one forward
    pass; errors stay with their upload. Together, 64 MNIST digits cost 9 us each to decode
    instead of 28 (bench/). Uploads over `offload` bytes together, or any that is not
    small (`is_small`), move the decoding to a worker thread, and any picture that is not
    MNIST-like the preprocessing and forward pass."""
    if not datas:  # every file of a batch refused by its declared type
        return Readings([], np.empty((0, 10), np.float32), [] if explain else None, {})
    # Small together, not only each: 64 files of 63 KB are 4 MB of decoding work.
    offloaded = sum(map(len, datas)) > offload or not all(is_small(d, offload) for d in datas)
    decoded = await run_maybe_offloaded(offloaded, timed_decode_many, datas, max_pixels)
    errors = {i: d for i, d in enumerate(decoded) if isinstance(d, ServiceError)}
    pictures = {i: d for i, d in enumerate(decoded) if not isinstance(d, ServiceError)}
    if not pictures:
        return Readings([], np.empty((0, 10), np.float32), [] if explain else None, errors)
    indices = list(pictures)
    slow = explain or not all(map(is_mnist_like, pictures.values()))
    rows, samples = await run_maybe_offloaded(
        slow, classify_pictures, loaded, list(pictures.values())
    )
    placed = [n for n, empty in enumerate(samples.blank) if not empty]
    blank = [n for n, empty in enumerate(samples.blank) if empty]
    errors.update((indices[n], BlankImage.no_digit()) for n in blank)
    notes = [_explain(samples, n) for n in placed] if explain else None
    return Readings([indices[n] for n in placed], rows, notes, errors)


async def classify_batch(
    loaded: LoadedModel,
    files: list[tuple[str | None, bytes | ServiceError]],
    max_pixels: int,
    offload: int,
    explain: bool = False,
) -> list[BatchItem]:
    """A BatchItem per file, in order: its prediction or its error (`read_uploads`; a file
    given as its error instead of its bytes is not read)."""
    readable = [i for i, (_, data) in enumerate(files) if not isinstance(data, ServiceError)]
    datas = [files[i][1] for i in readable]
    readings = await read_uploads(loaded, datas, max_pixels, offload, explain)
    found = predictions(loaded, readings.probabilities, readings.explanations)
    answers = {readable[n]: answer for n, answer in zip(readings.found, found, strict=True)}
    errors = {readable[n]: error for n, error in readings.errors.items()}
    errors.update((i, data) for i, (_, data) in enumerate(files) if isinstance(data, ServiceError))
    return [_item(name, answers.get(i), errors.get(i)) for i, (name, _) in enumerate(files)]


async def read_images(
    loaded: LoadedModel, datas: list[bytes], max_pixels: int, offload: int, batcher: MicroBatcher
) -> np.ndarray:
    """The (N, 10) probabilities of N uploads, all of which must hold a digit: one goes
    the way of /v1/predict's (`read_upload`, the shared batch), several the way of a batch
    request's (`read_uploads`). The first upload's error otherwise, saying which it is."""
    if len(datas) == 1:
        reading = await read_upload(loaded, datas[0], max_pixels, offload, batcher)
        return reading.probabilities[None]
    readings = await read_uploads(loaded, datas, max_pixels, offload)
    if readings.errors:
        index = min(readings.errors)
        error = readings.errors[index]
        raise type(error)(f"image {index} of {len(datas)}: {error.detail}", error.headers)
    return readings.probabilities


def _explain(samples: Samples, index: int) -> Explanation | None:
    box = samples.boxes[index]
    return None if box is None else explanation(samples.rows[index], box)


def _item(name: str | None, answer: Prediction | None, error: ServiceError | None) -> BatchItem:
    if error is None:
        return BatchItem(filename=name, prediction=answer)
    REJECTED.labels(reason=error.code).inc()
    return BatchItem(filename=name, error=error.code, detail=error.detail)
