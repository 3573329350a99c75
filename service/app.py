"""The application factory: `uvicorn --factory service.app:create_app`.

    RequestMetrics > RequestTimeout > BodySizeLimit > InFlightLimit > FastAPI

Pure-ASGI guards wrap one FastAPI app whose routers hold every route: predict, models,
health, metrics, the page, and the Open Inference Protocol (v2). The model loads in the
lifespan, before the worker serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp

from service.batching import MicroBatcher
from service.drain import Drain
from service.inference import classify_samples, upload_batcher
from service.limits import BodySizeLimit, InFlightLimit, RequestTimeout
from service.metrics import RequestMetrics, mark_worker_dead, reap_dead_workers
from service.registry import ModelRegistry
from service.routes import health, metrics, models, page, predict, v2
from service.routes.errors import error_responses, install_error_handlers, oip_error_responses
from service.settings import Settings, configure_logging
from service.stores import open_store

log = logging.getLogger("service.app")
GC_THRESHOLD = 50_000  # allocations between collections of the youngest generation (700)


async def refresh(registry: ModelRegistry) -> None:
    """Follow the store once; any surprise is logged and the served model stays: a store
    that cannot be read must never take a worker down."""
    try:
        await run_in_threadpool(registry.refresh)
    except Exception:
        log.exception("store refresh failed")


def settle_heap() -> None:
    """Move what start-up allocated (modules, the model, the app) out of the garbage
    collector's sight, and collect the youngest generation about 70 times less often.

    A request allocates many short-lived objects; at CPython's default thresholds (700,
    10, 10) each worker ran collections over ~75,000 long-lived objects many times a second
    under load: p99 at concurrency 16 went from 34 ms to 7 ms with this, and a prediction
    costs 25 us less (bench/harness.py; issue 14's note). `gc.freeze` is CPython's own tool
    for this (docs: "Freeze all the objects tracked by the garbage collector"). Full
    collections still run (every 400 young ones: seconds apart under load), so cyclic
    garbage stays bounded; bench/soak.py shows RSS flat over minutes.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


async def poll_store(registry: ModelRegistry, settings: Settings) -> None:
    """Follow the store forever: every poll interval, swap in a new target version, and
    clear the metrics of workers that died without saying so (`kill -9`)."""
    while True:
        await asyncio.sleep(settings.poll_interval)
        await refresh(registry)
        reap_dead_workers(settings.metrics_dir)


def create_app(settings: Settings | None = None) -> ASGIApp:
    """Build the app; the model loads in the lifespan, not at import time."""
    settings = settings or Settings()
    configure_logging()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry = ModelRegistry(
            open_store(settings.store, settings.model, settings.cache_dir),
            settings.alias,
            settings.pinned_versions,
        )
        app.state.settings = settings
        app.state.registry = registry
        app.state.batcher = upload_batcher(settings.max_pixels, settings.max_batch)
        app.state.sample_batcher = MicroBatcher(classify_samples, settings.max_batch)
        app.state.drain = Drain(settings.drain_seconds)
        app.state.drain.install(asyncio.get_running_loop())
        await refresh(registry)
        if registry.current is None:
            # A mistyped --store looks like an empty store: say when it is no folder.
            where, hint = settings.store, ""
            if not where.startswith("s3://") and not os.path.isdir(where):
                exists = os.path.exists(where)
                hint = " (not a folder)" if exists else " (no such folder: a publish creates it)"
            log.warning("no model in %s yet%s; /readyz stays 503 until one loads", where, hint)
        settle_heap()
        poller = asyncio.create_task(poll_store(registry, settings))
        try:
            yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            mark_worker_dead(os.getpid())

    # /docs and /redoc from the assets fastapi-offline ships: they work without internet.
    api = FastAPIOffline(
        favicon_url="/favicon.ico",
        title="MNIST digit classifier",
        version="1",
        description="Classifies images of handwritten digits with the served model version.",
        lifespan=lifespan,
        # Metrics are Prometheus's; FastAPI's OpenTelemetry hooks only cost a provider
        # lookup per request (~8 us, bench/).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(api)
    # The inference routes first: FastAPI tries every route of each router included before
    # the one that matches (a /v2 inference behind the other routers cost 60 us more).
    routers = (predict.router, v2.router, models.router, health.router, metrics.router, page.router)
    for router in routers:  # every route documents the guards' answers and the 422 (v2: 400)
        guards = oip_error_responses() if router is v2.router else error_responses()
        api.include_router(router, responses=guards)
    api.mount("/static", page.static, name="static")
    app: ASGIApp = InFlightLimit(api, limit=settings.max_in_flight)
    app = BodySizeLimit(app, max_bytes=settings.max_body_bytes)
    app = RequestTimeout(app, seconds=settings.request_timeout)
    # Route templates for the metrics, including requests the guards answer before routing
    # (FastAPI adds included routes to `api.routes` only when the app starts).
    return RequestMetrics(app, routes=[*api.routes, *(r for x in routers for r in x.routes)])
