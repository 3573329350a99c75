"""One listening socket per uvicorn worker, all bound to the same address with SO_REUSEPORT,
so that the kernel spreads connections over the workers evenly.

uvicorn's multi-worker mode binds one socket in the supervisor and every worker accepts from
it: whichever worker wakes first takes the connection. Keep-alive clients then stay where
the race put them: wrk's 16 connections split anywhere from 8/8 to 1/15 between 2 workers,
leaving a core idle for the whole run (BENCHMARKS.md, "Issue 14, third pass"); a proxy's
pool of upstream connections does the same. Linux hashes each new connection over the
listening sockets of a SO_REUSEPORT group instead (socket(7); the approach of uvicorn
PR #2472, not released in 0.54).

`ReusePortListener` goes in uvicorn's list of sockets. The supervisor binds one socket
itself and keeps it, not listening: it reserves the port (another program binding it fails
with "address already in use", as with one shared socket) and names the port when 0 was
asked for. Each worker that unpickles the listener (uvicorn starts workers with `spawn`)
binds its own socket; uvicorn listens on it after the app's lifespan has loaded the model,
so no connection is queued to a worker that cannot answer it yet, and a worker that dies
takes only its own queue with it.
"""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

log = logging.getLogger("uvicorn.error")


def reuse_port_supported() -> bool:
    """Whether this system balances connections over a SO_REUSEPORT group (Linux; BSDs and
    macOS accept the option but send every connection to one socket)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def bind_reuse_port(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEADDR and SO_REUSEPORT, not listening.
    OSError when the address is taken by a socket outside the group or cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class ReusePortListener:
    """Stands for the listening socket in uvicorn's list of sockets: in the supervisor, the
    reserving socket (`reserve`); in each worker, a socket of the worker's own, bound when
    the worker unpickles this object."""

    def __init__(self, reservation: socket.socket) -> None:
        self.reservation = reservation
        self.host, self.port = reservation.getsockname()[:2]

    @classmethod
    def reserve(cls, host: str, port: int) -> ReusePortListener:
        """Bind the supervisor's reserving socket (port 0: a free port, then used by every
        worker). OSError as `bind_reuse_port`."""
        return cls(bind_reuse_port(host, port))

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        return bind_reuse_port, (self.host, self.port)

    def close(self) -> None:
        self.reservation.close()


def run_uvicorn(app: str, *, host: str, port: int, workers: int, **options: Any) -> None:
    """`uvicorn.run(app, host=..., port=..., workers=..., **options)`, except that several
    workers listen on sockets of their own (`ReusePortListener`) where the system balances
    them; under uvicorn's own supervisor all the same (restarts, signals, health checks).
    SystemExit(3), as uvicorn's, when the address cannot be bound."""
    if workers == 1 or not reuse_port_supported():
        uvicorn.run(app, host=host, port=port, workers=workers, **options)
        return
    config = uvicorn.Config(app, host=host, port=port, workers=workers, **options)
    try:
        listener = ReusePortListener.reserve(host, port)
    except OSError as exc:
        log.error("%s", exc)
        sys.exit(STARTUP_FAILURE)
    address = f"[{listener.host}]" if ":" in listener.host else listener.host
    log.info("Uvicorn running on http://%s:%d, one socket per worker", address, listener.port)
    try:
        Multiprocess(config, sockets=[listener]).run()  # type: ignore[list-item]
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
