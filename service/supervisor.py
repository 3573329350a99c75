"""Run N uvicorn worker processes, each accepting on its own SO_REUSEPORT socket.

uvicorn's `workers=N` shares one listening socket: every worker wakes on a new connection
and the first to run accepts all that are queued, so the keep-alive pool of a client or a
proxy can land on one worker while the others idle (16 of 16 connections in 3 of 8 tries
here). With a socket per worker the kernel spreads connections by their address hash: +12%
requests/s and a lower p99 with 2 workers and 16 connections (BENCHMARKS.md).

The supervisor restarts a worker that dies, gives up when workers keep dying at start (a
bad address, say), and on SIGTERM or SIGINT stops every worker gracefully: each finishes
its requests in flight, as under uvicorn's own supervisor.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from typing import Any

import uvicorn
from prometheus_client.multiprocess import mark_process_dead

log = logging.getLogger("service.supervisor")

QUICK_DEATH_SECONDS = 10.0  # a worker that dies this soon after starting did not start
MAX_QUICK_DEATHS = 3


def listening_socket(
    host: str, port: int, backlog: int = 2048, listen: bool = True
) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEPORT, listening unless told not to."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def serve_worker(options: dict[str, Any]) -> None:
    """One worker process: its own listening socket and one uvicorn server."""
    config = uvicorn.Config(**options)
    sock = listening_socket(config.host, config.port, config.backlog)
    uvicorn.Server(config).run(sockets=[sock])


class Supervisor:
    """Keeps `workers` processes running `serve_worker(options)` until told to stop."""

    def __init__(self, workers: int, options: dict[str, Any], grace_seconds: float) -> None:
        self.workers = workers
        self.options = options
        self.grace_seconds = grace_seconds
        self.stop = threading.Event()
        self.context = multiprocessing.get_context("spawn")  # as uvicorn: no forked state

    def _start(self) -> tuple[BaseProcess, float]:
        process = self.context.Process(target=serve_worker, args=(self.options,), daemon=False)
        process.start()
        log.info("started worker %d", process.pid)
        return process, time.monotonic()

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT (exit code 0) or until workers keep failing at
        start (1)."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stop.set())
        running = [self._start() for _ in range(self.workers)]
        quick_deaths = 0
        while not self.stop.wait(0.5):
            for index, (process, started) in enumerate(running):
                if process.is_alive():
                    continue
                # Its live gauges leave the sums. (Not via service.metrics: importing that
                # here would give the supervisor metric files of its own.)
                if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and process.pid:
                    mark_process_dead(process.pid)
                if time.monotonic() - started < QUICK_DEATH_SECONDS:
                    quick_deaths += 1
                    if quick_deaths >= MAX_QUICK_DEATHS:
                        log.error("workers keep exiting at start; stopping (see above)")
                        self._stop_all(running)
                        return 1
                else:
                    quick_deaths = 0
                log.warning(
                    "worker %d exited (code %s); starting another", process.pid, process.exitcode
                )
                running[index] = self._start()
        self._stop_all(running)
        return 0

    def _stop_all(self, running: list[tuple[BaseProcess, float]]) -> None:
        for process, _ in running:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + self.grace_seconds + 5
        for process, _ in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("worker %d did not stop in time; killing it", process.pid)
                process.kill()
                process.join()
