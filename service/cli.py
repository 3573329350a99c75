"""`mnist-serve`: validate flags into Settings, then run uvicorn: one worker in this
process, or several under `service.supervisor`."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from service.settings import Settings

GRACE_SECONDS = 30  # for requests in flight when a worker is told to stop

FLAGS = {
    "store": str,
    "model": str,
    "alias": str,
    "host": str,
    "port": int,
    "workers": int,
    "poll_interval": float,
    "max_body_bytes": int,
    "max_pixels": int,
    "max_batch": int,
    "max_in_flight": int,
    "request_timeout": float,
    "metrics_dir": str,
    "access_log": bool,
}


def parse_args(argv: list[str] | None = None) -> dict[str, object]:
    """Flags that were given; the rest come from MNIST_* variables or defaults."""
    p = argparse.ArgumentParser(prog="mnist-serve", description=__doc__)
    for name, kind in FLAGS.items():
        field = Settings.model_fields[name]
        flag = f"--{name.replace('_', '-')}"
        if kind is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, help=field.description)
        else:
            p.add_argument(flag, type=kind, help=field.description)
    return {k: v for k, v in vars(p.parse_args(argv)).items() if v is not None}


def prepare_metrics_dir(path: Path | None) -> Path:
    """Point prometheus-client's multiprocess mode at an empty folder, before any worker
    imports it: files left from an earlier run would add old counts to the new ones."""
    folder = path or Path(tempfile.mkdtemp(prefix="mnist-metrics-"))
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    return folder


def main(argv: list[str] | None = None) -> int:
    """Entry point of `mnist-serve`."""
    flags = parse_args(argv)
    try:
        settings = Settings(**flags)
    except ValidationError as exc:
        first = exc.errors()[0]
        print(f"mnist-serve: error: --{first['loc'][0]}: {first['msg']}", file=sys.stderr)
        return 2
    # Each worker process builds its own app from the environment, so the flags go there.
    for name, value in settings.model_dump(exclude_none=True).items():
        os.environ[f"MNIST_{name.upper()}"] = str(value)
    # One BLAS thread per worker, set before any worker imports NumPy. The workers are the
    # parallelism; OpenBLAS's own threads, spinning on every micro-batched forward pass,
    # took 2 workers from ~3,000 to ~250 requests/s on 2 cores (BENCHMARKS.md).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    prepare_metrics_dir(settings.metrics_dir)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    options = {
        "app": "service.app:create_app",
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        "timeout_graceful_shutdown": GRACE_SECONDS,
        "log_level": "info",
        "access_log": settings.access_log,
    }
    if settings.workers > 1:
        return supervise(settings, options)
    # uvicorn finishes in-flight requests on SIGTERM, then re-raises the signal to whatever
    # handler was there before it: make that a clean exit, so a stop is not a crash (143).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    uvicorn.run(**options)
    return 0


def supervise(settings: Settings, options: dict[str, object]) -> int:
    """Several workers, each on its own socket (service/supervisor.py)."""
    # Imported here, after prepare_metrics_dir: prometheus-client picks its multiprocess
    # mode once, when first imported, and this module must not import it earlier.
    from service.supervisor import Supervisor, listening_socket

    if settings.port == 0:
        print("mnist-serve: error: --port 0 would give each worker its own port; "
              "name a port when --workers is above 1", file=sys.stderr)  # fmt: skip
        return 2
    try:
        # Bound, not listening: it gets no connections, but a taken address fails here,
        # in one line, and the port stays ours while workers come and go.
        reserved = listening_socket(settings.host, settings.port, listen=False)
    except OSError as exc:
        print(f"mnist-serve: error: cannot listen on {settings.host}:{settings.port}: "
              f"{exc.strerror}", file=sys.stderr)  # fmt: skip
        return 1
    with reserved:
        return Supervisor(settings.workers, options, GRACE_SECONDS).run()


if __name__ == "__main__":
    sys.exit(main())
