"""One listening socket per uvicorn worker, all bound to the same address with SO_REUSEPORT,
so that the kernel spreads connections over the workers by hash, each on its own.

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
so no connection is queued to a worker that cannot answer it yet.

The costs, as uvicorn's PR discussion names them (a trade of latency for an even load):
- A worker's accept queue is its own: connections the kernel queued to a worker that dies
  (or stops) are reset, or wait until it is restarted, where one shared queue let another
  worker take them; with every worker down at once, connections are refused rather than
  queued until one is back (~1.3 s).
- Any socket of the same user may join a SO_REUSEPORT group. A second server started on
  a port whose workers listen fails (`check_port_free`), but one started within the first
  one's start-up (before its first worker listens) or one that sets SO_REUSEPORT itself
  takes a share of the connections. The user is the boundary, as it is for ptrace.
- A worker that cannot bind (the address has gone) dies, and uvicorn restarts it until it
  can.
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
    """A TCP socket bound to (host, port) with SO_REUSEADDR (connections of an earlier run
    waiting in TIME_WAIT do not hold the port) and SO_REUSEPORT, not listening. OSError
    when the address is taken by a socket outside the group or cannot be bound."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def check_port_free(host: str, port: int) -> None:
    """OSError (EADDRINUSE) when a socket listens on (host, port), also one of a
    SO_REUSEPORT group of this same user: a second server started on the port by mistake
    would otherwise join the group and take half the connections. Bound as uvicorn binds
    its one socket, with SO_REUSEADDR: connections of an earlier run waiting in TIME_WAIT
    do not count."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


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
        worker). OSError (EADDRINUSE) when a socket listens on the port
        (`check_port_free`), or when it cannot be bound."""
        if port:
            check_port_free(host, port)
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
        reason = exc.strerror.lower() if exc.strerror else str(exc)
        log.error(
            "[Errno %s] error while attempting to bind on address %r: %s (another server "
            "on it? choose another port: --port)",
            exc.errno,
            (host, port),
            reason,
        )
        sys.exit(STARTUP_FAILURE)
    address = f"[{listener.host}]" if ":" in listener.host else listener.host
    log.info("Uvicorn running on http://%s:%d, one socket per worker", address, listener.port)
    try:
        Multiprocess(config, sockets=[listener]).run()  # type: ignore[list-item]
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
