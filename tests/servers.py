"""Start the real service (uvicorn, real sockets) in a subprocess for integration tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import httpx

from tests.tools import require_program

NGINX_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "nginx.conf"


def free_port() -> int:
    """A TCP port on loopback that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def live_children(parent: int, command_part: bytes) -> list[int]:
    """The live (not zombie) child processes of `parent` whose command line holds
    `command_part` (/proc), sorted: a server's or a trainer's worker processes."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == parent and fields[0] != "Z" and command_part in command:
            pids.append(int(stat.parent.name))
    return sorted(pids)


TCP_LISTEN, TCP_TIME_WAIT = "0A", "06"  # states as /proc/net/tcp writes them


def loopback_sockets(port: int, state: str) -> int:
    """How many TCP sockets on 127.0.0.1:`port` are in `state` (/proc/net/tcp)."""
    local = f"0100007F:{port:04X}"
    rows = [row.split() for row in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    return sum(1 for row in rows if row[1] == local and row[3] == state)


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
def serve(
    store_root: Path | str,
    log_dir: Path,
    *flags: str,
    ready: bool = True,
    env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """Run `python -m service.cli --store ... --port <free>` (with `env` added to the
    environment); stop it (SIGTERM) afterwards."""
    port = free_port()
    log = log_dir / f"server-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNIST_")} | (env or {})
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
def nginx_in_front(upstream: str | list[str], folder: Path) -> Iterator[str]:
    """The config of deploy/ with only the upstreams' (HOST:PORT, one or several replicas)
    and the listener's addresses made local; nginx in the foreground; its URL."""
    binary = require_program("nginx")
    port = free_port()
    text = NGINX_CONFIG.read_text()
    # Debian's nginx (1.22) has no `resolve` for upstream servers; a fixed address needs none.
    assert "server api:8000 resolve;" in text and "listen 8080 " in text
    upstreams = [upstream] if isinstance(upstream, str) else upstream
    text = text.replace("server api:8000 resolve;", " ".join(f"server {u};" for u in upstreams))
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


class Answer(NamedTuple):
    """One request of a Load: when it was sent and answered (monotonic seconds), its status
    and the version that answered, the client thread that sent it."""

    sent: float
    received: float
    status: int
    version: int | None
    thread: int


class Load:
    """Threads that POST one image in a loop and record every answer."""

    def __init__(self, url: str, image: bytes, threads: int = 4) -> None:
        self.url, self.image = url, image
        self.answers: list[Answer] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]

    def _run(self, thread: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self._stop.is_set():
                try:
                    sent = time.monotonic()
                    r = client.post("/v1/predict", content=self.image,
                                    headers={"content-type": "image/png"})  # fmt: skip
                    version = r.json().get("version") if r.status_code == 200 else None
                    self.answers.append(
                        Answer(sent, time.monotonic(), r.status_code, version, thread)
                    )
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def wait_for_version(self, version: int, timeout: float = 15) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(answer.version == version for answer in self.answers[-20:]):
                return time.monotonic()
            time.sleep(0.02)
        raise TimeoutError(f"version {version} never answered")
