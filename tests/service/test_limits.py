"""The ASGI guards: requests in flight, and time per request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from service.limits import InFlightLimit, RequestTimeout

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class SlowApp:
    """Reads the whole body, then waits `delay` seconds before answering 200."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body"):
            pass
        await asyncio.sleep(self.delay)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})


def client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_in_flight_limit_answers_503_with_retry_after() -> None:
    app = InFlightLimit(SlowApp(0.3), limit=2)
    async with client(app) as c:
        responses = await asyncio.gather(*(c.post("/v1/predict") for _ in range(3)))
        probe = await asyncio.gather(c.post("/v1/predict"), c.get("/healthz"), c.get("/healthz"))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 503]
    busy = next(r for r in responses if r.status_code == 503)
    assert busy.headers["retry-after"] == "1"
    assert busy.json()["error"] == "overloaded"
    assert [r.status_code for r in probe[1:]] == [200, 200]  # probes are never refused
    assert app.in_flight == 0


async def test_slow_processing_is_504() -> None:
    async with client(RequestTimeout(SlowApp(1.0), seconds=0.2)) as c:
        response = await c.post("/v1/predict", content=b"x")
    assert response.status_code == 504
    assert response.json()["detail"] == "the request took longer than 0.2 s to process"


async def test_slow_client_body_is_408() -> None:
    async def trickle() -> AsyncIterator[bytes]:
        for _ in range(10):
            await asyncio.sleep(0.1)
            yield b"x"

    async with client(RequestTimeout(SlowApp(0), seconds=0.25)) as c:
        response = await c.post("/v1/predict", content=trickle())
    assert response.status_code == 408
    assert response.json()["error"] == "request_timeout"
