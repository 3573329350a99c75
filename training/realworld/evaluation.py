"""A model's accuracy per kind of real-world upload, the uploads read as the service reads
them: decoded (`service.imaging.decode.decode_many`) and turned into MNIST samples
(`service.imaging.mnist.to_mnist_many`), the same functions `POST /v1/predict/batch` runs.

The uploads are made once (`prepare`: about a minute of one core for 100 of each kind, the
photos' rendering most of it; spread over the CPUs) and then scored for as many models as
needed (`score`, a forward pass): the candidate and the version it is compared with read
exactly the same uploads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from joblib import Parallel, cpu_count, delayed
from joblib.externals.loky.process_executor import TerminatedWorkerError

from service.errors import ServiceError
from service.imaging.decode import decode_many
from service.imaging.mnist import to_mnist_many
from training.realworld import uploads as made
from training.realworld.parent_death import die_with_parent

# Every kind of bench/README's table; the first are made from MNIST test digits, `pen_drawn`
# from strokes as people draw each digit, `typed` from DejaVu fonts, `uci` from scikit-learn's
# UCI digits, and `blank_dim` holds no digit at all (right answer: "no digit").
KINDS = [*made.MNIST_KINDS, "pen_drawn", "typed", "uci", "blank_dim"]
NO_DIGIT = -1  # the expected answer of an upload without a digit
MAX_PIXELS = 8_388_608  # the service's default --max-pixels
DEFAULT_COUNT = 100  # uploads per kind: one upload is a point of accuracy
DEFAULT_SEED = 2026
# Worker processes making uploads at most: each peaks at ~260 MB (a kind's photos), and the
# longest kind (exif_rotated, ~8 of the ~50 CPU-seconds here) bounds the time beyond that.
MAX_PROCESSES = 4

Predict = Callable[[np.ndarray], np.ndarray]  # (N, 784) float32 in [0, 1] -> (N, 10)


@dataclass(frozen=True)
class Upload:
    """An image file as a client sends it, and the digit a person sees in it (or NO_DIGIT)."""

    kind: str
    data: bytes
    expected: int


@dataclass(frozen=True)
class KindSamples:
    """One kind's uploads after decoding and preprocessing.

    rows: (M, 784) float32 MNIST samples of the M uploads in which a digit was found;
    expected: (M,) int64, their digits (NO_DIGIT where a person sees none);
    right_without_digit: uploads rightly answered "no digit", which no model changes (an
    upload refused as undecodable is never right); count: every upload of the kind."""

    rows: np.ndarray
    expected: np.ndarray
    right_without_digit: int
    count: int


def uploads(
    kind: str, count: int, seed: int, mnist_test: tuple[np.ndarray, np.ndarray]
) -> Iterator[Upload]:
    """`count` uploads of `kind`, the same ones for the same seed. `mnist_test` is the
    (N, 28, 28) uint8 test images and their (N,) labels the MNIST kinds are made from.
    KeyError for an unknown kind; FileNotFoundError for `typed` without DejaVu fonts."""
    if kind not in KINDS:
        raise KeyError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    if kind == "uci":
        from sklearn.datasets import load_digits

        uci = load_digits()
        for index in rng.choice(len(uci.images), count, replace=False):
            yield Upload(kind, made.uci_digit(uci.images[index], rng), int(uci.target[index]))
        return
    if kind in ("typed", "pen_drawn"):
        make_labelled = made.typed if kind == "typed" else made.drawn_digit
        for index in range(count):
            label = index % 10
            yield Upload(kind, make_labelled(np.zeros((28, 28), np.uint8), rng, label), label)
        return
    if kind == "blank_dim":
        for _ in range(count):
            yield Upload(kind, made.blank_dim(np.zeros((28, 28), np.uint8), rng), NO_DIGIT)
        return
    images, labels = mnist_test
    make = made.MNIST_KINDS[kind]
    for index in rng.choice(len(images), count, replace=count > len(images)):
        yield Upload(kind, make(images[index], rng), int(labels[index]))


def read(batch: list[Upload]) -> KindSamples:
    """The uploads as the service reads them (decoding, then MNIST samples)."""
    decoded = decode_many([upload.data for upload in batch], MAX_PIXELS)
    kept = [i for i, picture in enumerate(decoded) if not isinstance(picture, ServiceError)]
    samples = to_mnist_many([decoded[i] for i in kept])  # type: ignore[misc]
    found = [n for n, blank in enumerate(samples.blank) if not blank]
    blank_right = sum(batch[kept[n]].expected == NO_DIGIT for n, b in enumerate(samples.blank) if b)
    return KindSamples(
        rows=samples.rows[found],
        expected=np.array([batch[kept[n]].expected for n in found], np.int64),
        right_without_digit=blank_right,
        count=len(batch),
    )


def prepare(
    kinds: list[str],
    count: int,
    seed: int,
    mnist_test: tuple[np.ndarray, np.ndarray],
    processes: int | None = None,
) -> dict[str, KindSamples]:
    """Each kind's `count` uploads (`uploads`), read as the service reads them (`read`),
    one kind at a time in each of `processes` worker processes (None: one per CPU this
    process may use, by its affinity and cgroup quota, at most MAX_PROCESSES; 1: in this
    process). Each kind draws from a generator of its own, so the uploads are the same
    however many processes make them.

    The workers are joblib's (loky): spawned, not forked (the caller may hold TensorFlow's
    threads), handed the test images as a memory map, stopped on Ctrl-C or any other
    exception here (`mnist-train` turns SIGTERM into one), and on Linux killed with it when
    it is killed outright (`parent_death.die_with_parent`; call `prepare` from the main
    thread). They do not see this process's changes to module globals.
    Errors: those of `uploads`, and WorkerDied when a worker process is killed (the
    operating system's out-of-memory killer, a signal)."""
    workers = min(MAX_PROCESSES if processes is None else processes, cpu_count(), len(kinds))
    if workers <= 1:
        return {kind: _prepare_kind(kind, count, seed, mnist_test) for kind in kinds}
    try:
        done = Parallel(
            n_jobs=workers, backend="loky", initializer=die_with_parent, initargs=(os.getpid(),)
        )(delayed(_prepare_kind)(kind, count, seed, mnist_test) for kind in kinds)
    except TerminatedWorkerError as exc:
        raise WorkerDied(
            "a worker process making the uploads was killed (out of memory?); "
            "--real-world 0 skips the evaluation"
        ) from exc
    return dict(zip(kinds, done, strict=True))


class WorkerDied(RuntimeError):
    """A worker process of `prepare` died before it finished its kind."""


def _prepare_kind(
    kind: str, count: int, seed: int, mnist_test: tuple[np.ndarray, np.ndarray]
) -> KindSamples:
    return read(list(uploads(kind, count, seed, mnist_test)))


def score(prepared: dict[str, KindSamples], predict: Predict) -> dict[str, float]:
    """Accuracy per kind: the share of uploads answered as a person reads them (the digit,
    or "no digit" where there is none), rounded to 4 places."""
    accuracy = {}
    for kind, samples in prepared.items():
        right = samples.right_without_digit
        if len(samples.rows):
            digits = np.asarray(predict(samples.rows)).argmax(axis=1)
            right += int((digits == samples.expected).sum())
        accuracy[kind] = round(right / samples.count, 4) if samples.count else 0.0
    return accuracy
