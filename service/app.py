"""The FastAPI application factory: `uvicorn --factory service.app:create_app`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.concurrency import run_in_threadpool

from service.errors import install_error_handlers
from service.batching import MicroBatcher
from service.limits import BodySizeLimit, InFlightLimit, RequestTimeout
from service.metrics import RequestMetrics, mark_worker_dead
from service.registry import ModelRegistry
from service.routes import health, metrics, models, page, predict
from service.settings import Settings
from service.store import ModelStore

log = logging.getLogger("service.app")


async def poll_store(registry: ModelRegistry, interval: float) -> None:
    """Follow the store forever: every `interval` seconds, swap in a new target version."""
    while True:
        await asyncio.sleep(interval)
        try:
            await run_in_threadpool(registry.refresh)
        except Exception:  # the poller must outlive any surprise; the served model stays
            log.exception("store poll failed")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the model loads in the lifespan, not at import time."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry = ModelRegistry(
            ModelStore(settings.store, settings.model), settings.alias, settings.pinned_versions
        )
        app.state.settings = settings
        app.state.registry = registry
        app.state.batcher = MicroBatcher(settings.max_batch)
        await run_in_threadpool(registry.refresh)
        if registry.current is None:
            log.warning("no model in %s yet; /readyz stays 503 until one loads", settings.store)
        poller = asyncio.create_task(poll_store(registry, settings.poll_interval))
        try:
            yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            mark_worker_dead(os.getpid())

    app = FastAPI(
        title="MNIST digit classifier",
        version="1",
        description="Classifies images of handwritten digits with the served model version.",
        lifespan=lifespan,
        # Metrics are Prometheus's; FastAPI's OpenTelemetry hooks only cost a provider
        # lookup per request (~8 us, bench/).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    app.router.routes.extend(predict.ROUTES)
    routers = (models.router, health.router, metrics.router, page.router)
    for router in routers:
        app.include_router(router)
    app.mount("/static", page.static, name="static")
    # Route templates for requests the limits answer before routing.
    templates = [*app.routes, *(route for router in routers for route in router.routes)]
    # Outermost last: metrics see every answer, then the timeout, the in-flight cap, the body cap.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(InFlightLimit, limit=settings.max_in_flight)
    app.add_middleware(RequestTimeout, seconds=settings.request_timeout)
    app.add_middleware(RequestMetrics, routes=templates)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, with the plain ASGI predict endpoints described too."""
    if app.openapi_schema is None:
        app.openapi_schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=[*predict.DOCUMENTED, *app.routes],
        )
    return app.openapi_schema
