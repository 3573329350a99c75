"""One listening socket per worker in a SO_REUSEPORT group: real sockets on loopback."""

from __future__ import annotations

import errno
import pickle
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.listeners import ReusePortListener, reuse_port_supported
from tests.servers import TCP_TIME_WAIT, free_port, loopback_sockets

pytestmark = pytest.mark.skipif(
    not reuse_port_supported(), reason="SO_REUSEPORT balancing is Linux's"
)
HOST = "127.0.0.1"


@pytest.fixture
def listener() -> Iterator[ReusePortListener]:
    reserved = ReusePortListener.reserve(HOST, 0)
    yield reserved
    reserved.close()


def worker_socket(listener: ReusePortListener) -> socket.socket:
    """What a worker process gets when it unpickles the listener (uvicorn spawns workers)."""
    sock = pickle.loads(pickle.dumps(listener))
    assert isinstance(sock, socket.socket)
    return sock


def test_port_zero_is_resolved_once_for_every_worker(listener: ReusePortListener) -> None:
    assert listener.port != 0
    with worker_socket(listener) as one, worker_socket(listener) as two:
        assert one.getsockname() == two.getsockname() == (HOST, listener.port)
        assert one.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1


def test_a_port_another_program_listens_on_is_refused() -> None:
    with socket.socket() as other:
        other.bind((HOST, 0))
        other.listen()
        with pytest.raises(OSError) as caught:
            ReusePortListener.reserve(HOST, other.getsockname()[1])
    assert caught.value.errno == errno.EADDRINUSE


def test_a_second_server_of_the_same_user_is_refused(listener: ReusePortListener) -> None:
    """SO_REUSEPORT lets sockets of one user share a port: a second `mnist-serve` started
    on it by mistake must fail once the first one's workers listen, not take half of its
    connections."""
    with worker_socket(listener) as worker:
        worker.listen()
        with pytest.raises(OSError) as caught:
            ReusePortListener.reserve(HOST, listener.port)
    assert caught.value.errno == errno.EADDRINUSE


def test_connections_of_an_earlier_run_in_time_wait_do_not_hold_the_port() -> None:
    """A restart (or an upgrade from one worker to two) right after a run whose server
    closed connections: they wait in TIME_WAIT for a minute, and must not stop the start."""
    with socket.socket() as earlier:  # as uvicorn binds its one socket
        earlier.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        earlier.bind((HOST, 0))
        earlier.listen()
        port = earlier.getsockname()[1]
        with socket.create_connection((HOST, port)) as client:
            served, _ = earlier.accept()
            served.close()  # the server closes first: its side waits in TIME_WAIT
            client.recv(1)
    assert loopback_sockets(port, TCP_TIME_WAIT) >= 1
    ReusePortListener.reserve(HOST, port).close()


def test_ipv6_addresses_are_bound_as_ipv6() -> None:
    listener = ReusePortListener.reserve("::1", 0)
    try:
        with worker_socket(listener) as sock:
            assert sock.family == socket.AF_INET6
            assert sock.getsockname()[:2] == ("::1", listener.port)
    finally:
        listener.close()


def test_the_reservation_keeps_other_programs_off_the_port(listener: ReusePortListener) -> None:
    with socket.socket() as other, pytest.raises(OSError) as caught:
        other.bind((HOST, listener.port))
    assert caught.value.errno == errno.EADDRINUSE


def test_no_connection_waits_for_a_worker_that_does_not_listen_yet(
    listener: ReusePortListener,
) -> None:
    """The reservation and a worker still loading its model (bound, not listening) take no
    connections: refused, not queued."""
    loading = worker_socket(listener)
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((HOST, listener.port), timeout=2)
        with worker_socket(listener) as ready:
            ready.listen()
            ready.settimeout(2)
            for _ in range(8):  # each to the one listening socket
                with socket.create_connection((HOST, listener.port), timeout=2):
                    ready.accept()[0].close()
    finally:
        loading.close()


def test_connections_spread_over_the_workers(listener: ReusePortListener) -> None:
    """64 connections opened at once, as a load generator or a proxy's pool does: each of
    two listening workers gets a fair share (a shared socket gives them to whichever wakes
    first)."""
    workers = [worker_socket(listener) for _ in range(2)]
    clients = []
    try:
        for sock in workers:
            sock.listen(128)
            sock.setblocking(False)
        clients = [socket.create_connection((HOST, listener.port), timeout=2) for _ in range(64)]
        shares = []
        for sock in workers:
            count = 0
            while True:
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    break
                conn.close()
                count += 1
            shares.append(count)
    finally:
        for sock in [*workers, *clients]:
            sock.close()
    assert sum(shares) == 64
    assert min(shares) >= 16, shares  # Binomial(64, 1/2): under 16 once in 30,000 runs


def test_mnist_serve_says_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind((HOST, free_port()))
        other.listen()
        port = other.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "service.cli", "--store", str(tmp_path), "--port", str(port),
             "--workers", "2"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 3
    assert (
        f"error while attempting to bind on address ('127.0.0.1', {port}): address already in use"
        in proc.stderr
    )
    assert "--port" in proc.stderr
    assert "Traceback" not in proc.stderr
