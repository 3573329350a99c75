"""Start the real service (uvicorn, real sockets) in a subprocess for integration tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.tools import require_program

NGINX_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "nginx.conf"


def free_port() -> int:
    """A TCP port on loopback that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A running `mnist-serve` process."""

    process: subprocess.Popen[str]
    url: str
    log: Path

    def rss_bytes(self) -> int:
        """Resident memory of the server process (one worker: the process itself)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")


@contextlib.contextmanager
def serve(store_root: Path, log_dir: Path, *flags: str, ready: bool = True) -> Iterator[Server]:
    """Run `python -m service.cli --store ... --port <free>`; stop it (SIGTERM) afterwards."""
    port = free_port()
    log = log_dir / f"server-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNIST_")}
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "--store", str(store_root), "--port", str(port),
             *flags],
            stdout=out, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_for(server, "/readyz" if ready else "/healthz")
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@contextlib.contextmanager
def helper_server(cmd: list[str], ready_url: str, log: Path) -> Iterator[None]:
    """Run a helper server (Prometheus, a Pushgateway) for the block, once `ready_url`
    answers 200; its output goes to `log`."""
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_ok(ready_url)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextlib.contextmanager
def nginx_in_front(upstream: str, folder: Path) -> Iterator[str]:
    """The config of deploy/ with only the upstream's and the listener's addresses made
    local; nginx in the foreground; its URL."""
    binary = require_program("nginx")
    port = free_port()
    text = NGINX_CONFIG.read_text()
    # Debian's nginx (1.22) has no `resolve` for upstream servers; a fixed address needs none.
    assert "server api:8000 resolve;" in text and "listen 8080 " in text
    text = text.replace("server api:8000 resolve;", f"server {upstream};")
    text = text.replace("listen 8080 ", f"listen 127.0.0.1:{port} ")
    config = folder / "nginx.conf"
    config.write_text(text)
    globals_ = f"daemon off; pid {folder}/nginx.pid; error_log {folder}/error.log warn;"
    with (folder / "access.log").open("w") as out:
        process = subprocess.Popen(
            [binary, "-p", str(folder), "-c", str(config), "-g", globals_],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until_ok(f"http://127.0.0.1:{port}/healthz", timeout=20)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_until_ok(url: str, timeout: float = 60) -> None:
    """Poll `url` until it answers 200 (a helper server such as Prometheus starting up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer 200 within {timeout} s")


def wait_for(server: Server, path: str, timeout: float = 60) -> None:
    """Poll `path` until it answers 200, or fail with the server's log."""
    deadline = time.monotonic() + timeout
    # One client for every try: a new one per try builds an SSL context (tens of ms), which
    # the start-up benchmark would count as the server's.
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"server exited: {server.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if client.get(server.url + path).status_code == 200:
                    return
            time.sleep(0.01)
    raise TimeoutError(f"{path} not 200 after {timeout} s: {server.log.read_text()[-3000:]}")


def requests_by_worker(metrics_dir: Path) -> dict[int, float]:
    """HTTP requests each worker has counted, from its own prometheus-client file."""
    from prometheus_client.multiprocess import MultiProcessCollector

    counts = {}
    for path in metrics_dir.glob("counter_*.db"):
        metrics = MultiProcessCollector.merge([str(path)])
        counts[int(path.stem.split("_")[-1])] = sum(
            sample.value
            for metric in metrics
            if metric.name == "mnist_http_requests"
            for sample in metric.samples
            if sample.name == "mnist_http_requests_total"
        )
    return counts
