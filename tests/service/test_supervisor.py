"""Several workers under `service.supervisor`: real processes, sockets and signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.servers import Server, free_port, requests_by_worker, serve
from tests.uploads import png
from training.store import Store

pytestmark = pytest.mark.integration


def workers_of(parent: int) -> set[int]:
    """Worker processes (multiprocessing spawn children) of the supervisor `parent`."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == parent and b"spawn_main" in cmdline:
            found.add(int(stat.parent.name))
    return found


def listeners(port: int) -> int:
    """Sockets in LISTEN state on `port` (the supervisor's own is bound, not listening)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for r in rows if r.split()[1].endswith(f":{port:04X}") and r.split()[3] == "0A")


def wait_until(condition, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.1)


def port_of(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def test_a_keep_alive_pool_is_spread_over_the_workers(tiny_store: Store, tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    with serve(tiny_store.root, tmp_path, "--workers", "2", "--metrics-dir", str(metrics_dir)) as s:
        wait_until(lambda: listeners(port_of(s)) == 2)
        start = threading.Barrier(16)
        statuses: list[int] = []
        digit = png(np.eye(28, dtype=np.uint8) * 255)

        def client() -> None:
            with httpx.Client(base_url=s.url) as c:  # one connection, kept alive
                start.wait()
                for _ in range(5):
                    r = c.post("/v1/predict", content=digit, headers={"content-type": "image/png"})
                    statuses.append(r.status_code)

        threads = [threading.Thread(target=client) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        by_worker = requests_by_worker(metrics_dir)
    assert statuses == [200] * 80
    # 16 connections opened at once: under one shared socket the first worker to wake often
    # took all of them; hashed over two sockets, both get some (all on one: p = 2^-15).
    assert len(by_worker) == 2 and all(by_worker.values()), by_worker


def test_a_killed_worker_is_replaced(tiny_store: Store, tmp_path: Path) -> None:
    with serve(tiny_store.root, tmp_path, "--workers", "2") as server:
        before = workers_of(server.process.pid)
        assert len(before) == 2
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(workers_of(server.process.pid) - before) == 1)
        wait_until(lambda: listeners(port_of(server)) == 2)
        for _ in range(20):  # new connections each: both workers answer
            assert httpx.get(server.url + "/readyz").status_code == 200
        assert f"worker {victim} exited (code -9); starting another" in server.log.read_text()


def test_sigterm_stops_every_worker_and_exits_0(tiny_store: Store, tmp_path: Path) -> None:
    with serve(tiny_store.root, tmp_path, "--workers", "2") as server:
        workers = workers_of(server.process.pid)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=60) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def mnist_serve(*flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *flags], capture_output=True, text=True, timeout=60
    )


def test_a_taken_port_is_one_line_and_exit_1(tiny_store: Store) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        proc = mnist_serve("--store", str(tiny_store.root), "--port", str(port), "--workers", "2")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"mnist-serve: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


def test_port_0_needs_one_worker(tiny_store: Store) -> None:
    proc = mnist_serve("--store", str(tiny_store.root), "--port", "0", "--workers", "2")
    assert proc.returncode == 2
    assert "name a port when --workers is above 1" in proc.stderr
