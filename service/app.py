"""The application factory: `uvicorn --factory service.app:create_app`.

    RequestMetrics > RequestTimeout > InFlightLimit > BodySizeLimit > HotPath
        POST /v1/predict, /v1/predict/batch -> the plain ASGI endpoints (routes/predict.py)
        anything else                       -> FastAPI (docs, models, health, metrics, page)

The guards wrap everything; the predict endpoints skip FastAPI's own middleware, exception
and routing layers, a dozen calls per request and per response message (BENCHMARKS.md).
"""

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
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from service.batching import MicroBatcher
from service.limits import BodySizeLimit, InFlightLimit, RequestTimeout, send_json_error
from service.metrics import RequestMetrics, mark_worker_dead
from service.registry import ModelRegistry
from service.routes import health, metrics, models, page, predict
from service.routes.errors import install_error_handlers
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


class HotPath:
    """Send the predict endpoints' requests straight to them; everything else to FastAPI."""

    def __init__(self, api: FastAPI, routes: list[Route]) -> None:
        self.api = api
        self.endpoints = {route.path: route.app for route in routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.endpoints.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None:
            return await self.api(scope, receive, send)
        if scope["method"] != "POST":
            detail = f"{scope['path']} takes POST, not {scope['method']}"
            return await send_json_error(send, 405, "method_not_allowed", detail, {"Allow": "POST"})
        scope["app"] = self.api  # where the endpoints find the state, as under Starlette
        await endpoint(scope, receive, send)


def create_app(settings: Settings | None = None) -> ASGIApp:
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

    api = FastAPI(
        title="MNIST digit classifier",
        version="1",
        description="Classifies images of handwritten digits with the served model version.",
        lifespan=lifespan,
        # Metrics are Prometheus's; FastAPI's OpenTelemetry hooks only cost a provider
        # lookup per request (~8 us, bench/).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(api)
    routers = (models.router, health.router, metrics.router, page.router)
    for router in routers:
        api.include_router(router)
    api.mount("/static", page.static, name="static")
    api.openapi = lambda: _openapi(api)  # type: ignore[method-assign]
    # Route templates for the metrics, including requests the guards answer themselves.
    templates = [*predict.ROUTES, *api.routes, *(r for router in routers for r in router.routes)]
    app: ASGIApp = HotPath(api, predict.ROUTES)
    app = BodySizeLimit(app, max_bytes=settings.max_body_bytes)
    app = InFlightLimit(app, limit=settings.max_in_flight)
    app = RequestTimeout(app, seconds=settings.request_timeout)
    return RequestMetrics(app, routes=templates)


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
