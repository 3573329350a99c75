"""Pure-ASGI guards around the app: body size, requests in flight, and time per request.

uvicorn has no body limit and no slow-client timeout, and Starlette's multipart parser puts
no cap on file parts; these three close those gaps for every route at once.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import PayloadTooLarge
from service.routes.errors import error_response

# Probes and scrapes must answer even when the worker is saturated.
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


async def send_json_error(
    send: Send, status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> None:
    """Send `error_response` (the JSON error shape, counted) straight on the ASGI channel."""
    response = error_response(status, code, detail, headers)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


class BodySizeLimit:
    """413 for a declared Content-Length over the cap before reading anything, and for a
    chunked body as soon as the bytes received pass the cap."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> str:
        return f"the request body is over the limit of {self.max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await send_json_error(send, 413, "payload_too_large", self._too_large())
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the app, so its error handler answers with JSON.
                    raise PayloadTooLarge(self._too_large())
            return message

        await self.app(scope, limited_receive, send)


class InFlightLimit:
    """At most `limit` requests at once in this worker; beyond it 503 with Retry-After
    instead of an unbounded queue."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            return await self.app(scope, receive, send)
        if self.in_flight >= self.limit:
            detail = f"the server is busy ({self.limit} requests in progress); retry shortly"
            return await send_json_error(send, 503, "overloaded", detail, {"Retry-After": "1"})
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class RequestTimeout:
    """Give up on a request that has not been answered within `seconds`: 408 when its body
    was still arriving (a slow client), 504 when the work itself took too long."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        state = {"body_done": False, "started": False}

        async def tracking_receive() -> Message:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                state["body_done"] = True
            return message

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            async with asyncio.timeout(self.seconds):
                await self.app(scope, tracking_receive, tracking_send)
        except TimeoutError:
            if state["started"]:
                return  # too late for a status; the connection closes
            if state["body_done"]:
                detail = f"the request took longer than {self.seconds} s to process"
                return await send_json_error(send, 504, "timeout", detail)
            detail = f"the request body did not arrive within {self.seconds} s"
            await send_json_error(send, 408, "request_timeout", detail, {"Connection": "close"})
