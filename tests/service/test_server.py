"""The real server: uvicorn in a subprocess, real HTTP, real signals, a real store."""

from __future__ import annotations

import http.client
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import SeedRun
from tests.keras_files import publish_layers, random_layers
from tests.servers import (
    TCP_LISTEN,
    Load,
    live_children,
    loopback_sockets,
    requests_by_worker,
    serve,
)
from tests.uploads import gif_bomb, png, png_header_only
from training.data import load_idx_dir
from training.store import Store

pytestmark = pytest.mark.integration


@pytest.fixture
def store(seed_store: SeedRun, tmp_path: Path) -> Store:
    """A private copy of the trained store, free to publish into."""
    shutil.copytree(seed_store.root, tmp_path / "store")
    return Store(tmp_path / "store")


def test_service_never_imports_tensorflow_or_keras(store: Store) -> None:
    code = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from service.app import create_app\n"
        "from service.settings import Settings\n"
        f"with TestClient(create_app(Settings(store={str(store.root)!r}))) as c:\n"
        "    assert c.get('/readyz').status_code == 200\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras'}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_http_accuracy_matches_the_manifest(store: Store, mnist_dir: Path, tmp_path: Path) -> None:
    data = load_idx_dir(mnist_dir)
    with serve(store.root, tmp_path) as server, httpx.Client(base_url=server.url) as client:
        answers = [
            client.post("/v1/predict", files={"file": (f"{i}.png", png(digit), "image/png")})
            for i, digit in enumerate(data.x_test[:1000])
        ]
    assert {r.status_code for r in answers} == {200}
    predicted = np.array([r.json()["digit"] for r in answers])
    accuracy = float((predicted == data.y_test[:1000]).mean())
    assert abs(accuracy - store.manifest(1)["metrics"]["accuracy"]) <= 0.005


def test_hot_reload_under_load_has_zero_failures(
    store: Store, mnist_dir: Path, tmp_path: Path
) -> None:
    image = png(load_idx_dir(mnist_dir).x_test[0])
    with serve(store.root, tmp_path, "--poll-interval", "0.5") as server:
        with Load(server.url, image) as load:
            time.sleep(0.5)
            # A broken version: published, promoted, never served.
            broken = publish_layers(store, random_layers(seed=1))
            with (store.dir / str(broken) / "model.keras").open("ab") as fh:
                fh.write(b"tampered")
            store.set_alias("production", broken)
            time.sleep(1.5)
            assert httpx.get(server.url + "/readyz").json()["version"] == 1
            # Then a good one: it takes over.
            good = publish_layers(store, random_layers(seed=2))
            store.set_alias("production", good)
            load.wait_for_version(good)
            time.sleep(1.0)
        log = server.log.read_text()
    statuses = Counter(answer.status for answer in load.answers)
    assert load.errors == []
    assert set(statuses) == {200}, statuses
    assert {answer.version for answer in load.answers} == {1, good}  # never `broken`
    # Once one answer came from the new version, every request sent after it is answered
    # by the new version; and no client ever goes back to the old one.
    swapped = min(a.received for a in load.answers if a.version == good)
    after = [a.version for a in load.answers if a.sent > swapped]
    assert len(after) > 20
    assert set(after) == {good}
    for thread in range(4):
        versions = [a.version for a in load.answers if a.thread == thread]
        assert versions == sorted(versions, key=lambda v: v == good), thread
    assert f"skipping mnist version {broken}: checksums fail" in log


def _send_slowly(port: int, body: bytes, started: threading.Event, out: list[bytes]) -> None:
    head = (
        f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head + body[:10])
        started.set()
        time.sleep(1.0)  # SIGTERM arrives while this request is in flight
        sock.sendall(body[10:])
        sock.settimeout(10)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        out.append(b"".join(chunks))


def test_sigterm_lets_in_flight_requests_finish(store: Store, tmp_path: Path) -> None:
    digit = np.zeros((28, 28), np.uint8)
    digit[5:23, 12:16] = 255
    with serve(store.root, tmp_path) as server:
        port = int(server.url.rsplit(":", 1)[1])
        started, out = threading.Event(), []
        sender = threading.Thread(target=_send_slowly, args=(port, png(digit), started, out))
        sender.start()
        started.wait(5)
        time.sleep(0.2)
        server.process.send_signal(signal.SIGTERM)
        sender.join(15)
        assert server.process.wait(timeout=30) == 0
    assert out and out[0].startswith(b"HTTP/1.1 200 OK")
    assert b'"digit":1' in out[0]


def malformed_requests(rng: np.random.Generator) -> list[dict]:
    """Many kinds of bad input, as httpx request arguments."""
    good = png(np.eye(28, dtype=np.uint8) * 255)
    png_type, multipart = {"content-type": "image/png"}, "multipart/form-data; boundary=x"
    noise = bytes(rng.integers(0, 256, 3000, dtype=np.uint8))
    kinds = [
        {"content": b"", "headers": png_type},
        {"content": good[: len(good) // 2], "headers": {"content-type": "image/png"}},
        {"content": b"just text, honest", "headers": {"content-type": "image/png"}},
        {"content": png_header_only(20000, 20000), "headers": png_type},
        {"content": gif_bomb(), "headers": {"content-type": "image/gif"}},
        {"content": b"\0" * (9 * 1024 * 1024), "headers": {"content-type": "image/png"}},
        {"files": {"wrong": ("a.png", good, "image/png")}},
        {"files": {"file": ("a.svg", b"<svg/>", "image/svg+xml")}},
        {"content": b"--x\r\nbroken multipart", "headers": {"content-type": multipart}},
        {"content": noise, "headers": {"content-type": "image/jpeg"}},
        {"content": good, "headers": {"content-type": "application/json"}},
    ]  # fmt: skip
    return [kinds[i % len(kinds)] for i in range(1000)]


def test_a_thousand_malformed_requests_no_5xx_and_flat_memory(store: Store, tmp_path: Path) -> None:
    requests = malformed_requests(np.random.default_rng(0))
    with serve(store.root, tmp_path) as server, httpx.Client(base_url=server.url) as client:
        for kind in requests[:50]:  # warm the allocator with every kind once
            client.post("/v1/predict", **kind)
        before = server.rss_bytes()
        statuses = Counter(client.post("/v1/predict", **kind).status_code for kind in requests)
        after = server.rss_bytes()
        assert client.get("/readyz").status_code == 200
    assert all(400 <= status < 500 for status in statuses), statuses
    assert after - before < 50 * 1024 * 1024, (before, after)


@pytest.mark.parametrize(("flags", "logged"), [((), True), (("--no-access-log",), False)])
def test_access_log_can_be_turned_off(
    tiny_store: Store, tmp_path: Path, flags: tuple[str, ...], logged: bool
) -> None:
    with serve(tiny_store.root, tmp_path, *flags) as server:
        assert httpx.get(server.url + "/healthz").status_code == 200
        time.sleep(0.2)  # the log line is written after the answer
        text = server.log.read_text()
    assert ('"GET /healthz HTTP/1.1" 200' in text) is logged


def test_one_worker_counts_its_requests_in_metrics(tiny_store: Store, tmp_path: Path) -> None:
    # The multiprocess mode of prometheus-client is fixed when it is first imported: the
    # CLI must set it up before anything imports it, even with one worker in its process.
    with serve(tiny_store.root, tmp_path) as server:
        digit = png(np.eye(28, dtype=np.uint8) * 255)
        answer = httpx.post(f"{server.url}/v1/predict", files={"file": ("d.png", digit)})
        assert answer.status_code == 200
        text = httpx.get(f"{server.url}/metrics").text
    assert 'mnist_http_requests_total{method="POST",route="/v1/predict",status="200"} 1.0' in text
    assert f'mnist_predictions_total{{digit="{answer.json()["digit"]}"}} 1.0' in text


def worker_pids(server_pid: int) -> list[int]:
    """The live worker processes uvicorn started for `server_pid` (its children spawned by
    multiprocessing; not its resource tracker)."""
    return live_children(server_pid, b"spawn_main")


def test_each_worker_listens_on_its_own_socket_and_takes_a_share(
    tiny_store: Store, tmp_path: Path
) -> None:
    """Keep-alive connections opened at once (a load generator, a proxy's pool) are spread
    over the workers by the kernel (SO_REUSEPORT), not left to whichever wakes first."""
    folder = tmp_path / "metrics"
    with serve(tiny_store.root, tmp_path, "--workers", "2", "--metrics-dir", str(folder)) as server:
        port = int(server.url.rsplit(":", 1)[1])
        deadline = time.monotonic() + 30
        while loopback_sockets(port, TCP_LISTEN) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # the second worker may still be loading its model
        assert loopback_sockets(port, TCP_LISTEN) == 2
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=5) for _ in range(32)]
        for connection in connections:
            connection.connect()
        for connection in connections:
            connection.request("GET", "/healthz")
        for connection in connections:
            assert connection.getresponse().status == 200
            connection.close()
        by_worker = requests_by_worker(folder)
    assert len(by_worker) == 2, by_worker
    assert min(by_worker.values()) >= 4, by_worker  # Binomial(32, 1/2), plus readiness probes


def test_killing_a_worker_three_times_in_10_s_leaves_the_service_answering(
    tiny_store: Store, tmp_path: Path
) -> None:
    """uvicorn's supervisor restarts killed workers without limit: three quick deaths are
    not an outage (the supervisor this replaced stopped every worker after three)."""
    digit = png(np.eye(28, dtype=np.uint8) * 255)
    with serve(tiny_store.root, tmp_path, "--workers", "2", "--poll-interval", "0.5") as server:
        killed = []
        for _ in range(3):
            deadline = time.monotonic() + 3
            while not (workers := worker_pids(server.process.pid)) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert workers, server.log.read_text()[-2000:]
            killed.append(workers[0])
            subprocess.run(["kill", "-9", str(workers[0])], check=True)
            time.sleep(2)
        last = time.monotonic()
        answered = None
        with httpx.Client(base_url=server.url, timeout=1) as client:
            while time.monotonic() - last < 5 and answered is None:
                try:
                    if (
                        client.post("/v1/predict", files={"file": ("d.png", digit)}).status_code
                        == 200
                    ):
                        answered = time.monotonic() - last
                except httpx.TransportError:
                    time.sleep(0.1)
        assert answered is not None and answered < 5, server.log.read_text()[-3000:]
        assert server.process.poll() is None
        assert len(set(killed)) == 3 and len(worker_pids(server.process.pid)) >= 1


def test_a_killed_workers_live_gauges_leave_the_metrics(tiny_store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    flags = ("--workers", "2", "--poll-interval", "0.2", "--metrics-dir", str(folder))
    with serve(tiny_store.root, tmp_path, *flags) as server:
        deadline = time.monotonic() + 10
        while len(workers := worker_pids(server.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        victim = workers[0]
        deadline = time.monotonic() + 10
        while not list(folder.glob(f"gauge_live*_{victim}.db")) and time.monotonic() < deadline:
            httpx.get(server.url + "/readyz")  # each worker writes its gauges as it starts
            time.sleep(0.05)
        assert list(folder.glob(f"gauge_live*_{victim}.db"))
        subprocess.run(["kill", "-9", str(victim)], check=True)
        deadline = time.monotonic() + 10
        while list(folder.glob(f"gauge_live*_{victim}.db")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not list(folder.glob(f"gauge_live*_{victim}.db"))
        assert list(folder.glob(f"counter_{victim}.db"))  # its counts stay in the sums


def test_a_7_mb_part_header_is_400_within_a_second_and_health_stays_up(
    tiny_store: Store, tmp_path: Path
) -> None:
    """A Content-Disposition followed by 7 MB of ';' froze a worker for 12.6 s under the
    form splitter this replaced; python-multipart stops at its 4,224-byte header limit."""
    header = b'form-data; name="file"' + b";" * (7 * 1024 * 1024)
    body = b"--x\r\nContent-Disposition: " + header + b"\r\n\r\nA\r\n--x--\r\n"
    with serve(tiny_store.root, tmp_path) as server:
        result: list[tuple[int, float]] = []

        def attack() -> None:
            started = time.monotonic()
            form = {"content-type": "multipart/form-data; boundary=x"}
            response = httpx.post(server.url + "/v1/predict", content=body, headers=form)
            result.append((response.status_code, time.monotonic() - started))

        thread = threading.Thread(target=attack)
        thread.start()
        health = []
        with httpx.Client(base_url=server.url, timeout=5) as client:
            while thread.is_alive():
                started = time.monotonic()
                client.get("/healthz")
                health.append(time.monotonic() - started)
                time.sleep(0.02)
        thread.join()
    ((status, seconds),) = result
    assert status == 400 and seconds < 1, result
    assert max(health, default=0) < 0.5, health


@pytest.mark.parametrize(
    "aliases", ['{"production": 1e400}', "[" * 100_000 + "]" * 100_000, '{"production": "x"}']
)
def test_a_store_the_loader_cannot_read_is_a_failed_load_not_a_crash(
    tiny_store: Store, tmp_path: Path, aliases: str
) -> None:
    (tiny_store.dir / "aliases.json").write_text(aliases)
    with serve(tiny_store.root, tmp_path, "--poll-interval", "0.2", ready=False) as server:
        time.sleep(1)  # a few polls
        assert server.process.poll() is None, server.log.read_text()[-2000:]
        assert httpx.get(server.url + "/healthz").status_code == 200
        assert httpx.get(server.url + "/readyz").status_code == 503
        assert "store unreadable" in server.log.read_text()
