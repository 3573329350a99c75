"""`mnist-serve`: the settings (flags over MNIST_* variables over defaults: one class,
`service.settings.Settings`, is also the command line), then uvicorn, its `--workers`
processes under uvicorn's own supervisor."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import SettingsError

from service.listeners import run_uvicorn
from service.settings import ENV_PREFIX, Settings, configure_logging
from service.stores import open_store

GRACE_SECONDS = 30  # for requests in flight when a worker is told to stop
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus-client itself, at import


class MetricsDirInUse(Exception):
    """The metrics folder holds files that prometheus-client did not write."""


def prepare_metrics_dir(path: Path | None) -> Path:
    """Point prometheus-client's multiprocess mode at a folder emptied of its own files
    (`*.db`; files left from an earlier run would add old counts to the new ones), before
    any worker imports it. A folder holding anything else is refused: nothing of a user's
    is deleted (MetricsDirInUse)."""
    folder = path or Path(tempfile.mkdtemp(prefix="mnist-metrics-"))
    folder.mkdir(parents=True, exist_ok=True)
    others = sorted(p.name for p in folder.iterdir() if not (p.suffix == ".db" and p.is_file()))
    if others:
        raise MetricsDirInUse(
            f"--metrics-dir {folder} holds files that are not prometheus-client's "
            f"({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}): name an empty or "
            "new folder"
        )
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ[METRICS_ENV] = str(folder)
    return folder


def worker_environment(settings: Settings) -> dict[str, str]:
    """The MNIST_* variables from which each worker process builds the same `Settings`
    (uvicorn starts workers with the parent's environment, not its objects). An unset
    setting stays unset: `str(None)` would name a folder "None"."""
    return {
        f"{ENV_PREFIX}{name.upper()}": str(value)
        for name, value in settings.model_dump(exclude_none=True).items()
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point of `mnist-serve`."""
    try:
        settings = Settings(_cli_parse_args=sys.argv[1:] if argv is None else argv)
    except ValidationError as exc:
        first = exc.errors()[0]
        flag = str(first["loc"][0]).replace("_", "-")
        print(f"mnist-serve: error: --{flag}: {first['msg']}", file=sys.stderr)
        return 2
    except SettingsError as exc:
        print(f"mnist-serve: error: {exc}", file=sys.stderr)
        return 2
    try:
        open_store(settings.store, settings.model, settings.cache_dir)  # a bad URL: refused now
    except ValueError as exc:
        print(f"mnist-serve: error: --store {settings.store}: {exc}", file=sys.stderr)
        return 2
    try:
        folder = prepare_metrics_dir(settings.metrics_dir)
    except (MetricsDirInUse, OSError) as exc:
        print(f"mnist-serve: error: {exc}", file=sys.stderr)
        return 2
    os.environ.update(worker_environment(settings.model_copy(update={"metrics_dir": folder})))
    # One BLAS thread per worker, set before any worker imports NumPy. The workers are the
    # parallelism; OpenBLAS's own threads, spinning on every micro-batched forward pass,
    # took 2 workers from ~3,000 to ~250 requests/s on 2 cores (BENCHMARKS.md).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    configure_logging()
    try:
        serve(settings)
    finally:
        if settings.metrics_dir is None:  # ours, made in the temp folder: nothing to keep
            shutil.rmtree(folder, ignore_errors=True)
    return 0


def serve(settings: Settings) -> None:
    """uvicorn with the settings, until it stops."""
    if settings.workers == 1:
        # uvicorn finishes in-flight requests on SIGTERM, then re-raises the signal to the
        # handler there before it: make that a clean exit, so a stop is not a crash (143).
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    run_uvicorn(
        "service.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        timeout_graceful_shutdown=GRACE_SECONDS,
        log_level="info",
        access_log=settings.access_log,
    )


if __name__ == "__main__":
    sys.exit(main())
