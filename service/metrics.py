"""Every Prometheus metric of the service, declared once; elsewhere only .inc()/.observe().

Works in one process and across uvicorn workers: with PROMETHEUS_MULTIPROC_DIR set (by
`mnist-serve` before any worker imports this module), each worker writes its samples to
files there and `/metrics` adds them up. Labels are bounded: route templates, methods,
status codes, error codes, digits, stages; never paths, file names or addresses.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
STAGE_BUCKETS = (0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25)
CONFIDENCE_BUCKETS = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS = Counter("mnist_http_requests", "HTTP requests answered.", ["route", "method", "status"])
REQUEST_LATENCY = Histogram(
    "mnist_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "mnist_http_requests_in_flight",
    "Requests being handled now.",
    multiprocess_mode="livesum",
)
INFERENCE_LATENCY = Histogram(
    "mnist_inference_duration_seconds",
    "Time per call of one inference stage: decode (one upload, or a batch request's uploads "
    "together), preprocess (a stack of images) or forward (a batch).",
    ["stage"],
    buckets=STAGE_BUCKETS,
)
BATCH_SIZE = Histogram(
    "mnist_inference_batch_size_images", "Images per forward pass.", buckets=BATCH_BUCKETS
)
PREDICTIONS = Counter(
    "mnist_predictions",
    "Predictions made, by predicted digit: counted by the forward pass, so also those of a "
    "request that then fails (another of its images is blank; it times out).",
    ["digit"],
)
CONFIDENCE = Histogram(
    "mnist_prediction_confidence",
    "Probability of the predicted digit; a shift to low values is the first sign of drift.",
    buckets=CONFIDENCE_BUCKETS,
)
REJECTED = Counter(
    "mnist_rejected_requests", "Requests or batch images refused, by error code.", ["reason"]
)
MODEL_INFO = Gauge(
    "mnist_model_info",
    "1 for the model name and version a worker serves, 0 for one it served before.",
    ["model", "version"],
    multiprocess_mode="livemax",
)
MODEL_VERSION = Gauge(
    "mnist_model_version", "Version being served (0: none).", multiprocess_mode="livemax"
)
MODEL_ACCURACY = Gauge(
    "mnist_model_test_accuracy",
    "Test-set accuracy of the served version, from its manifest.",
    multiprocess_mode="livemax",
)
MODEL_LOADS = Counter("mnist_model_loads", "Model versions loaded and swapped in or pinned.")
MODEL_LOAD_FAILURES = Counter(
    "mnist_model_load_failures", "Model versions that failed verification, parsing or warm-up."
)
STORE_READ_FAILURES = Counter(
    "mnist_store_read_failures",
    "Polls of the model store that could not read it (its folder or aliases.json, or an "
    "object store that does not answer); the served version stays.",
)


def record_served(name: str, version: int, previous: int | None, accuracy: float | None) -> None:
    """A new version is being served by this worker."""
    if previous is not None:
        MODEL_INFO.labels(model=name, version=str(previous)).set(0)
    MODEL_INFO.labels(model=name, version=str(version)).set(1)
    MODEL_VERSION.set(version)
    MODEL_ACCURACY.set(accuracy if accuracy is not None else float("nan"))
    MODEL_LOADS.inc()


DECODE_LATENCY = INFERENCE_LATENCY.labels(stage="decode")
PREPROCESS_LATENCY = INFERENCE_LATENCY.labels(stage="preprocess")
FORWARD_LATENCY = INFERENCE_LATENCY.labels(stage="forward")
DIGIT_PREDICTIONS = [PREDICTIONS.labels(digit=str(digit)) for digit in range(10)]


def record_predictions(digit_counts: Iterable[int], confidences: Iterable[float]) -> None:
    """Count the predictions of one forward pass: how many of each digit (ten counts, in
    digit order; one update per digit predicted, not per image) and each confidence."""
    for series, count in zip(DIGIT_PREDICTIONS, digit_counts, strict=True):
        if count:
            series.inc(count)
    for confidence in confidences:
        CONFIDENCE.observe(confidence)


# Whether prometheus-client is in multiprocess mode: it decided when first imported, by
# PROMETHEUS_MULTIPROC_DIR (which `mnist-serve` sets, with --metrics-dir, before that).
MULTIPROCESS = values.ValueClass is not values.MutexValue


def exposition() -> tuple[bytes, str]:
    """The text exposition of every worker's metrics (or this process's)."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def mark_worker_dead(pid: int) -> None:
    """Drop a stopped worker's live gauges (its counters keep counting in the sums)."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(pid)


def reap_dead_workers(folder: Path | None) -> list[int]:
    """Mark dead the workers whose files are in the multiprocess `folder` but whose process
    is gone (killed: they could not say so; uvicorn's supervisor restarts them without
    telling prometheus-client), so their live gauges leave the sums. Their pids."""
    if not (MULTIPROCESS and folder):
        return []
    pids = {int(m[1]) for p in folder.glob("*.db") if (m := _PID.search(p.name))}
    dead = [pid for pid in sorted(pids) if not _alive(pid)]
    for pid in dead:
        multiprocess.mark_process_dead(pid)
    return dead


_PID = re.compile(r"_(\d+)\.db$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


class RequestMetrics:
    """Outermost middleware: counts every answered request by route template and status,
    including those that the limits refuse before routing."""

    def __init__(self, app: ASGIApp, routes: list[BaseRoute]) -> None:
        self.app = app
        self.routes = [route for route in routes if getattr(route, "path", None)]
        # A path without parameters is its own template: no route matching for those.
        self.fixed = {r.path for r in self.routes if "{" not in r.path}  # type: ignore[attr-defined]
        self.children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def _template(self, scope: Scope) -> str:
        if scope["path"] in self.fixed:
            return scope["path"]
        route = scope.get("route")
        if route is None:
            route = next((r for r in self.routes if r.matches(scope)[0] == Match.FULL), None)
        return getattr(route, "path", None) or "unmatched"

    def _series(self, scope: Scope, status: int) -> tuple[Counter, Histogram]:
        """The labelled counter and histogram for this answer, looked up once per label set
        (`.labels()` cost as much as the increment)."""
        route = self._template(scope)
        method = scope["method"] if scope["method"] in METHODS else "other"
        key = (route, method, status)
        series = self.children.get(key)
        if series is None:
            series = self.children[key] = (
                REQUESTS.labels(route=route, method=method, status=str(status)),
                REQUEST_LATENCY.labels(route=route, method=method),
            )
        return series

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500  # if the app dies before answering, that is what the client gets

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, recording_send)
        finally:
            IN_FLIGHT.dec()
            requests, latency = self._series(scope, status)
            requests.inc()
            latency.observe(time.perf_counter() - started)
