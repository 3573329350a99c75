"""Time per /v1/predict request in process: the app called as uvicorn calls it (ASGI, on
uvloop), with no sockets, so HTTP parsing, the kernel and the load generator are out of
the figure; against the no-op FastAPI app's /multipart (bench/reference_apps.py) in the
same run. `--concurrency` requests at a time, as one worker of the harness sees them
(16 connections over 2 workers: about 3 requests share a forward pass).

Usage: python bench/asgi_predict.py --store DIR [--concurrency 3] [--rounds 7] [--tree DIR]

Prometheus runs in multiprocess mode, as under `mnist-serve`. With `--tree`, the service
measured is that checkout's (e.g. `git worktree add /tmp/before c21a9e4`), imported in
place of this one's, for a before/after in the same conditions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# As mnist-serve's workers run: set before anything imports prometheus_client or NumPy.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="asgi-metrics-"))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# --tree: that checkout's `service` (and the rest), not the editable install's, which maps
# to this one; decided before anything below imports it.
_tree = argparse.ArgumentParser(add_help=False)
_tree.add_argument("--tree", type=Path)
TREE = _tree.parse_known_args()[0].tree
if TREE:
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in type(f).__module__]
    sys.path.insert(0, str(TREE.resolve()))

from bench.harness import BOUNDARY, multipart_body  # noqa: E402
from tests.uploads import png  # noqa: E402
from training.data import load_idx_dir  # noqa: E402

App = Callable[[dict, Callable, Callable], Awaitable[None]]


def request_scope(path: str, body: bytes) -> dict:
    content_type = f"multipart/form-data; boundary={BOUNDARY}".encode()
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def one(app: App, path: str, body: bytes) -> None:
    """One request, its whole body in one message; fails unless answered 200."""
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # no disconnect while the app answers
        return {"type": "http.disconnect"}

    statuses: list[int] = []

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(request_scope(path, body), receive, send)
    if statuses != [200]:
        raise SystemExit(f"{path} answered {statuses}")


async def measure(app: App, path: str, body: bytes, concurrency: int, rounds: int) -> float:
    """Microseconds per request: the fastest of `rounds` runs of 400 x `concurrency`."""
    lifespan: asyncio.Queue = asyncio.Queue()
    started = asyncio.Event()

    async def lifespan_send(message: dict) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()

    await lifespan.put({"type": "lifespan.startup"})
    task = asyncio.create_task(
        app(
            {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
            lifespan.get,
            lifespan_send,
        )
    )
    await started.wait()
    for _ in range(300):  # warm-up
        await asyncio.gather(*(one(app, path, body) for _ in range(concurrency)))
    best = float("inf")
    for _ in range(rounds):
        begin = time.perf_counter()
        for _ in range(400):
            await asyncio.gather(*(one(app, path, body) for _ in range(concurrency)))
        best = min(best, (time.perf_counter() - begin) / (400 * concurrency))
    await lifespan.put({"type": "lifespan.shutdown"})
    await task
    return best * 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--data-dir", type=Path, default=os.environ.get("MNIST_DIR"))
    p.add_argument("--concurrency", type=int, default=3)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--tree", type=Path, help="measure the service of this checkout instead")
    args = p.parse_args(argv)
    if args.data_dir is None:
        p.error("say where MNIST is: --data-dir DIR or MNIST_DIR")
    from bench.reference_apps import noop
    from service.app import create_app
    from service.settings import Settings

    body = multipart_body([png(load_idx_dir(args.data_dir).x_test[0])], "file")
    service = create_app(Settings(store=args.store, poll_interval=3600, access_log=False))
    measured = {}
    for name, app, path in (("no-op", noop, "/multipart"), ("service", service, "/v1/predict")):
        measured[name] = uvloop.run(measure(app, path, body, args.concurrency, args.rounds))
    import service

    print(f"service from {Path(service.__file__).parent.parent}")
    print(f"concurrency {args.concurrency}: no-op {measured['no-op']:.1f} us/request, service "
          f"{measured['service']:.1f} us/request, no-op / service "
          f"{measured['no-op'] / measured['service']:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
