"""Pure-ASGI guards around the app: body size, requests in flight, and time per request.

uvicorn has no body limit and no slow-client timeout, and Starlette's multipart parser puts
no cap on file parts; these three close those gaps for every route at once.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.routes.errors import error_response

# Probes and scrapes must answer even when the worker is saturated.
UNLIMITED_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"}
)
# Most bytes of a refused body read (and dropped) so that its client gets the 413.
DRAIN_BYTES = 64 * 1024 * 1024


async def send_json_error(
    scope: Scope,
    send: Send,
    status: int,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
) -> None:
    """Send `error_response` (the JSON error shape of the request's path, counted) straight
    on the ASGI channel."""
    response = error_response(status, code, detail, headers, scope["path"])
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


class BodySizeLimit:
    """Read the request body whole, at most `max_bytes`, before the app runs; the app then
    gets it as one message. 413 for a declared Content-Length over the cap (at once when
    the client waits for `100 Continue`), and for a chunked body as soon as the bytes
    received pass the cap.

    Reading first is what makes the guards inside fair: a client still sending holds no
    in-flight slot (`InFlightLimit`), only its connection. A refused body is drained, up
    to DRAIN_BYTES, before the 413 is sent: a client that writes its whole body before
    reading (urllib, requests) would otherwise meet a reset (the kernel answers unread
    data with RST) instead of the answer.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> str:
        return f"the request body is over the limit of {self.max_bytes} bytes"

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, received: int, drain: bool
    ) -> None:
        while drain and received <= DRAIN_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        headers = {"Connection": "close"}
        await send_json_error(scope, send, 413, "payload_too_large", self._too_large(), headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            # Draining a body sent after `100 Continue` would ask for it first: refuse at once.
            waits = headers.get(b"expect", b"").lower() == b"100-continue"
            drain = not waits and int(declared) <= DRAIN_BYTES
            return await self._refuse(scope, receive, send, 0, drain)
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before its body arrived: nobody to answer
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                more = message.get("more_body", False)
                return await self._refuse(scope, receive, send, received, more)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()  # after the body: only `http.disconnect` comes
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class InFlightLimit:
    """At most `limit` requests at once in this worker; beyond it 503 with Retry-After
    instead of an unbounded queue. Inside `BodySizeLimit`, so a request counts only once
    its body has arrived: slow senders cannot hold the slots."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            return await self.app(scope, receive, send)
        if self.in_flight >= self.limit:
            detail = f"the server is busy ({self.limit} requests in progress); retry shortly"
            retry = {"Retry-After": "1"}
            return await send_json_error(scope, send, 503, "overloaded", detail, retry)
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
                return await send_json_error(scope, send, 504, "timeout", detail)
            detail = f"the request body did not arrive within {self.seconds} s"
            close = {"Connection": "close"}
            await send_json_error(scope, send, 408, "request_timeout", detail, close)
