"""SIGTERM drains: readiness 503 at once, requests still answered for --drain-seconds, then
a clean exit; a client that follows readiness sees no failure."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from service.drain import Drain
from tests.servers import serve
from tests.uploads import digit_png
from training.store import Store


def test_not_installed_off_the_main_thread() -> None:
    results: list[bool] = []
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=lambda: results.append(Drain(1).install(loop)))
    thread.start()
    thread.join()
    loop.close()
    assert results == [False]


DRAINING = "draining: this worker is stopping; send new requests elsewhere"


def v2_readiness_during(url: str, seconds: float) -> list[tuple[int, object]]:
    """/v2/health/ready's answers, polled until one is 503 or `seconds` pass."""
    answers: list[tuple[int, object]] = []
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            answer = client.get(url + "/v2/health/ready")
            answers.append((answer.status_code, answer.json()))
            if answer.status_code == 503:
                break
            time.sleep(0.05)
    return answers


@pytest.mark.integration
@pytest.mark.parametrize("workers", [1, 2])
def test_a_client_that_follows_readiness_sees_no_failure(
    tiny_store: Store, tmp_path: Path, workers: int
) -> None:
    drain = 2.0
    image = digit_png()
    flags = ("--drain-seconds", str(drain), "--workers", str(workers), "--no-access-log")
    with serve(tiny_store.root, tmp_path, *flags) as server:
        routable = threading.Event()
        routable.set()
        stop = threading.Event()
        outcomes: list[tuple[float, object]] = []
        not_ready_at: list[float] = []

        def balancer() -> None:  # what a load balancer does: probe, stop routing on 503
            with httpx.Client(timeout=5) as client:
                while not stop.is_set():
                    try:
                        status = client.get(server.url + "/readyz").status_code
                    except httpx.TransportError:
                        status = 0
                    if status != 200 and routable.is_set():
                        not_ready_at.append(time.monotonic())
                        routable.clear()
                    time.sleep(0.1)

        def client() -> None:
            with httpx.Client(timeout=10) as http:
                while routable.is_set():
                    try:
                        answer = http.post(
                            server.url + "/v1/predict", files={"file": ("d.png", image)}
                        )
                        outcomes.append((time.monotonic(), answer.status_code))
                    except httpx.TransportError as exc:
                        outcomes.append((time.monotonic(), repr(exc)))

        threads = [threading.Thread(target=balancer)] + [
            threading.Thread(target=client) for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        sent_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        v2_ready = v2_readiness_during(server.url, seconds=1.0)
        assert server.process.wait(timeout=drain + 20) == 0
        exited_at = time.monotonic()
        stop.set()
        routable.clear()
        for thread in threads:
            thread.join(15)
    failures = [o for o in outcomes if o[1] != 200]
    assert not failures, failures[:5]
    assert not_ready_at and not_ready_at[0] - sent_at < 1.0  # readiness fell at once
    assert exited_at - sent_at >= drain  # served on for the drain, then stopped
    answered_after = [t for t, status in outcomes if t > sent_at]
    assert answered_after, "requests routed before the balancer noticed were answered"
    assert "SIGTERM: not ready" in server.log.read_text()
    assert v2_ready[-1] == (503, {"error": DRAINING}), v2_ready  # the KServe probe too
