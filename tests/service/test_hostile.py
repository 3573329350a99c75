"""Issue 15's reproducers against the real service (uvicorn, one worker, real sockets): each
answered with a 4xx within a second, /healthz answering meanwhile, and the worker's memory
back within 50 MB once they are all done.

The attacks on connections themselves (half-sent headers, huge headers) are the reverse
proxy's to stop: tests/deploy/test_proxy.py runs them through nginx.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.keras_files import publish_layers, random_layers, write_keras_declaring
from tests.servers import Server, serve
from tests.uploads import (
    FORM_HEADERS,
    digit_png,
    form_body,
    jpeg_repeating_a_scan,
    tall_16_bit_png,
)
from training.store import Store

pytestmark = pytest.mark.integration

RAW = {"content-type": "image/png"}
MB = 1024 * 1024


@dataclass
class HealthProbe:
    """GET /healthz every 20 ms in a thread, keeping each answer's time (seconds)."""

    url: str
    times: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.wait(0.02):
                started = time.monotonic()
                assert client.get(self.url + "/healthz").status_code == 200
                self.times.append(time.monotonic() - started)

    @contextlib.contextmanager
    def running(self) -> Iterator[HealthProbe]:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Store]]:
    folder = tmp_path_factory.mktemp("hostile")
    store = Store(folder / "store")
    publish_layers(store, random_layers())
    store.set_alias("production", 1)
    with serve(store.root, folder, "--poll-interval", "0.5") as running:
        with httpx.Client(base_url=running.url) as client:
            for _ in range(50):  # warm the allocator and the batcher
                client.post("/v1/predict", content=digit_png(), headers=RAW)
        yield running, store


@pytest.fixture(scope="module")
def rss_before(server: tuple[Server, Store]) -> int:
    return server[0].rss_bytes()


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def attack_cases() -> list[tuple[str, bytes, dict[str, str], str]]:
    tall = tall_16_bit_png()
    batch = form_body("files", [tall] * 4)
    return [
        ("16-bit 1 x 8,388,608 PNG", tall, RAW, "image_too_large"),
        ("JPEG repeating a scan 3,000 times", jpeg_repeating_a_scan(9000, 3000), RAW,
         "image_too_large"),
    ] + [("four 16-bit tall PNGs in one batch", batch, FORM_HEADERS, "batch")]  # fmt: skip


@pytest.mark.parametrize(("name", "body", "headers", "error"), attack_cases())
def test_a_cheap_upload_that_asks_for_seconds_is_refused_at_once(
    server: tuple[Server, Store],
    rss_before: int,
    name: str,
    body: bytes,
    headers: dict[str, str],
    error: str,
) -> None:
    running, _ = server
    path = "/v1/predict/batch" if error == "batch" else "/v1/predict"
    with HealthProbe(running.url).running() as probe:
        response, seconds = timed(
            lambda: httpx.post(running.url + path, content=body, headers=headers, timeout=30)
        )
    if error == "batch":
        assert response.status_code == 200
        assert [r["error"] for r in response.json()["results"]] == ["image_too_large"] * 4
    else:
        assert response.status_code == 413, response.text
        assert response.json()["error"] == error
        assert "over the limit" in response.json()["detail"]
    assert seconds < 1, (name, seconds)
    assert max(probe.times, default=0) < 0.5, (name, max(probe.times))


def test_slow_bodies_hold_no_in_flight_slot(server: tuple[Server, Store]) -> None:
    """128 connections trickling a body a byte a second made every good prediction 503:
    a request now counts against --max-in-flight (64) only once its body is in."""
    running, _ = server
    host, port = running.url.removeprefix("http://").split(":")
    slow = [socket.create_connection((host, int(port))) for _ in range(128)]
    for sock in slow:
        sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: t\r\nContent-Type: image/png\r\n"
                     b"Content-Length: 1000\r\n\r\nx")  # fmt: skip
    statuses = []
    try:
        with httpx.Client(base_url=running.url, timeout=10) as client:
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:
                for sock in slow:
                    with contextlib.suppress(OSError):
                        sock.sendall(b"x")
                response = client.post("/v1/predict", content=digit_png(), headers=RAW)
                statuses.append(response.status_code)
    finally:
        for sock in slow:
            sock.close()
    assert len(statuses) > 20
    assert statuses.count(200) >= 0.99 * len(statuses), statuses


def test_a_50_mb_body_sent_without_expect_gets_its_413_not_a_reset(
    server: tuple[Server, Store],
) -> None:
    """urllib and requests write the whole body before reading: the service reads (and
    drops) the refused body so that they get to read the 413."""
    running, _ = server
    host, port = running.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    started = time.monotonic()
    connection.request("POST", "/v1/predict", body=b"\0" * (50 * MB), headers=RAW)
    response = connection.getresponse()
    assert response.status == 413
    assert b"over the limit of 8388608 bytes" in response.read()
    assert time.monotonic() - started < 5
    connection.close()


def test_a_lying_model_file_is_a_failed_load_and_the_served_version_stays(
    server: tuple[Server, Store], rss_before: int
) -> None:
    """A 30 KB .keras declaring a 784 x 262,144 kernel cost 833 MB to load."""
    running, store = server
    with store.publishing() as staging:
        write_keras_declaring(staging / "model.keras", (784, 262_144))
        version = store.commit(staging, {"metrics": {"accuracy": 0.99}, "recipe": {"name": "x"}})
    store.set_alias("production", version)
    deadline = time.monotonic() + 10
    while "version " + str(version) not in running.log.read_text():
        assert time.monotonic() < deadline, running.log.read_text()[-2000:]
        time.sleep(0.1)
    assert "weights declared, over" in running.log.read_text()
    assert httpx.get(running.url + "/readyz").json()["version"] == 1
    assert (
        httpx.post(running.url + "/v1/predict", content=digit_png(), headers=RAW).json()["version"]
        == 1
    )
    store.set_alias("production", 1)


def test_a_form_of_near_miss_boundaries_is_split_off_the_event_loop(
    server: tuple[Server, Store],
) -> None:
    """python-multipart walks 8 MB of boundary padding byte by byte in Python (1.5 s): the
    worker's other clients must not wait for it."""
    running, _ = server
    padding = b" " * (8 * MB - 300)
    body = (b'--B\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nx\r\n--B'
            + padding + b"\r\n--B--\r\n")  # fmt: skip
    headers = {"content-type": "multipart/form-data; boundary=B"}
    with HealthProbe(running.url).running() as probe:
        response = httpx.post(
            running.url + "/v1/predict", content=body, headers=headers, timeout=30
        )
    assert 400 <= response.status_code < 500, response.text
    assert max(probe.times, default=0) < 0.5, max(probe.times)


def test_the_worker_keeps_its_memory_after_all_of_them(
    server: tuple[Server, Store], rss_before: int
) -> None:
    """Last in this module: the attacks above are over; within 50 MB of before them."""
    running, _ = server
    assert httpx.get(running.url + "/healthz").status_code == 200
    assert running.rss_bytes() - rss_before < 50 * MB, (rss_before, running.rss_bytes())
