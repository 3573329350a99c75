"""deploy/nginx/nginx.conf: the real nginx, run natively in front of the real service, keeps
slow and half-sent requests away from it (issue 15)."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.keras_files import publish_layers, random_layers
from tests.servers import Server, nginx_in_front, serve
from tests.uploads import digit_png
from training.store import Store

pytestmark = pytest.mark.integration

HEADER_TIMEOUT = 10.0  # client_header_timeout in the config
PER_CLIENT = 64  # limit_conn per_client in the config
GOOD_CLIENT = "127.0.0.2"  # the attackers connect from 127.0.0.1: another client address


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """The service (2 workers) and nginx in front of it."""
    folder = tmp_path_factory.mktemp("proxy")
    store = Store(folder / "store")
    publish_layers(store, random_layers())
    with (
        serve(store.root, folder, "--workers", "2", "--metrics-dir", str(folder / "metrics")) as s,
        nginx_in_front(s.url.removeprefix("http://"), folder) as proxy,
    ):
        yield s, proxy


def predictions_served(server: Server) -> float:
    """POST /v1/predict answers the service itself has counted (every worker)."""
    text = httpx.get(server.url + "/metrics").text
    pattern = r'mnist_http_requests_total\{[^}]*route="/v1/predict"[^}]*\} ([0-9.e+]+)'
    return sum(float(value) for value in re.findall(pattern, text))


def in_flight(server: Server) -> float:
    """Requests the service's workers are handling now (the scrape asking included)."""
    text = httpx.get(server.url + "/metrics").text
    return float(re.search(r"^mnist_http_requests_in_flight ([0-9.e+]+)$", text, re.M)[1])


def good_traffic(proxy: str, seconds: float) -> list[int]:
    """Statuses of predictions sent one after another for `seconds`, from GOOD_CLIENT."""
    transport = httpx.HTTPTransport(local_address=GOOD_CLIENT)
    statuses = []
    with httpx.Client(transport=transport, timeout=10) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                response = client.post(
                    proxy + "/v1/predict",
                    content=digit_png(),
                    headers={"content-type": "image/png"},
                )
                statuses.append(response.status_code)
            except httpx.TransportError:
                statuses.append(0)
    return statuses


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the other end has closed the connection (or answered 408 and closed)."""
    sock.settimeout(1)
    try:
        received = sock.recv(4096)
    except TimeoutError:
        return False  # still open, waiting for us
    except ConnectionResetError:
        return True
    return received == b"" or received.startswith(b"HTTP/1.1 408")


def test_a_prediction_through_the_proxy_is_the_services_answer(stack: tuple[Server, str]) -> None:
    server, proxy = stack
    headers = {"content-type": "image/png"}
    direct = httpx.post(server.url + "/v1/predict", content=digit_png(), headers=headers)
    proxied = httpx.post(proxy + "/v1/predict", content=digit_png(), headers=headers)
    assert proxied.status_code == 200
    assert proxied.json() == direct.json()


@dataclass
class AttackResult:
    """What good predictions got while an attack was held, and what the attack met."""

    statuses: list[int]  # of the good predictions, in order
    held_by_the_service: float = 0  # slow requests the service was handling meanwhile
    refused: int = 0  # attacking connections nginx answered 429 (per-client limit)
    counted_by_the_service: float = 0  # predictions the service answered meanwhile
    closed_after_timeout: int = 0  # of the first 200 attacking connections


def slow_bodies(server: Server, proxy: str, connections: int = 128) -> AttackResult:
    """`connections` bodies trickled a byte a second from 127.0.0.1, good predictions for
    8 s from GOOD_CLIENT meanwhile."""
    before = predictions_served(server)
    slow = [connect(proxy) for _ in range(connections)]
    head = b"POST /v1/predict HTTP/1.1\r\nHost: t\r\nContent-Type: image/png\r\n"
    for sock in slow:
        sock.sendall(head + b"Content-Length: 1000\r\n\r\n")
    stop = threading.Event()

    def trickle() -> None:  # one byte a second on every connection still open
        while not stop.wait(1.0):
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.sendall(b"x")

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        result = AttackResult(good_traffic(proxy, seconds=8))
        result.held_by_the_service = in_flight(server) - 1  # the slow bodies still trickle
    finally:
        stop.set()
        thread.join()
    for sock in slow:  # beyond the per-client limit: 429 at once
        sock.settimeout(0.2)
        with contextlib.suppress(TimeoutError, OSError):
            result.refused += sock.recv(4096).startswith(b"HTTP/1.1 429")
        sock.close()
    result.counted_by_the_service = predictions_served(server) - before
    return result


def half_sent_headers(server: Server, proxy: str, connections: int = 10_000) -> AttackResult:
    """`connections` requests whose headers never end, good predictions for 5 s meanwhile;
    then, past client_header_timeout, how many of the first 200 nginx has closed."""
    half = [connect(proxy) for _ in range(connections)]
    started = time.monotonic()
    for sock in half:
        sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: t\r\n")  # never finished
    result = AttackResult(good_traffic(proxy, seconds=5))
    assert httpx.get(server.url + "/healthz", timeout=2).status_code == 200
    time.sleep(max(0.0, started + HEADER_TIMEOUT + 2 - time.monotonic()))
    result.closed_after_timeout = sum(closed_by_peer(sock) for sock in half[:200])
    for sock in half:
        sock.close()
    return result


def test_128_slow_bodies_never_reach_the_service(stack: tuple[Server, str]) -> None:
    server, proxy = stack
    result = slow_bodies(server, proxy)
    statuses = result.statuses
    assert len(statuses) > 50
    assert statuses.count(200) >= 0.99 * len(statuses), statuses
    assert result.refused == 128 - PER_CLIENT
    assert result.held_by_the_service == 0
    # The service counted the good predictions and none of the slow ones.
    assert result.counted_by_the_service == statuses.count(200)


def test_10000_half_sent_headers_are_held_by_nginx_and_closed_after_the_timeout(
    stack: tuple[Server, str],
) -> None:
    server, proxy = stack
    result = half_sent_headers(server, proxy)
    assert len(result.statuses) > 30
    assert result.statuses.count(200) >= 0.99 * len(result.statuses), result.statuses
    assert result.closed_after_timeout == 200


def test_headers_over_the_limit_are_refused_by_nginx_in_the_json_shape(
    stack: tuple[Server, str],
) -> None:
    _, proxy = stack
    response = httpx.get(proxy + "/healthz", headers={"x-long": "a" * 9000})
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
    response = httpx.get(proxy + "/healthz?" + "a" * 9000)
    assert response.status_code == 414
    assert response.json()["error"] == "uri_too_long"


def test_a_body_over_the_limit_gets_its_413_from_nginx(stack: tuple[Server, str]) -> None:
    _, proxy = stack
    response = httpx.post(
        proxy + "/v1/predict", content=b"\0" * (9 * 1024 * 1024),
        headers={"content-type": "image/png"},
    )  # fmt: skip
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
