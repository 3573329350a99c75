"""The ASGI guards: the body read first, requests in flight, and time per request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from service.limits import DRAIN_BYTES, BodySizeLimit, InFlightLimit, RequestTimeout

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


class Channel:
    """An ASGI receive/send pair fed from a list of body chunks, recording what is sent
    and how many body bytes the app took."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.taken = 0
        self.sent: list[dict] = []

    async def receive(self) -> dict:
        if not self.chunks:
            await asyncio.sleep(3600)  # nothing more comes: a client that went quiet
        chunk = self.chunks.pop(0)
        self.taken += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks)}

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return self.sent[0]["status"]


def scope(headers: dict[str, str] | None = None) -> Scope:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return {"type": "http", "method": "POST", "path": "/v1/predict", "headers": raw}


class Echo:
    """Answers 200 with the body it received and the number of `http.request` messages."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        messages = [await receive()]
        while messages[-1].get("more_body"):
            messages.append(await receive())
        body = b"".join(m["body"] for m in messages)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"%d:" % len(messages) + body})


async def test_the_body_reaches_the_app_whole_in_one_message() -> None:
    channel = Channel([b"ab", b"cd", b"ef"])
    await BodySizeLimit(Echo(), max_bytes=6)(scope(), channel.receive, channel.send)
    assert channel.status == 200
    assert channel.sent[1]["body"] == b"1:abcdef"


async def test_a_declared_body_over_the_cap_is_drained_then_refused() -> None:
    channel = Channel([b"x" * 1000] * 50)
    limit = BodySizeLimit(Echo(), max_bytes=10_000)
    await limit(scope({"Content-Length": "50000"}), channel.receive, channel.send)
    assert channel.status == 413
    assert channel.taken == 50_000  # all of it read, so the client gets to read the 413
    assert (b"connection", b"close") in channel.sent[0]["headers"]


async def test_a_client_waiting_for_100_continue_is_refused_without_reading() -> None:
    channel = Channel([b"x" * 1000] * 50)
    headers = {"Content-Length": "50000", "Expect": "100-continue"}
    await BodySizeLimit(Echo(), max_bytes=10_000)(scope(headers), channel.receive, channel.send)
    assert channel.status == 413
    assert channel.taken == 0


async def test_a_declared_body_beyond_the_drain_bound_is_refused_at_once() -> None:
    channel = Channel([b"x"])
    headers = {"Content-Length": str(DRAIN_BYTES + 1)}
    await BodySizeLimit(Echo(), max_bytes=10_000)(scope(headers), channel.receive, channel.send)
    assert (channel.status, channel.taken) == (413, 0)


async def test_a_chunked_body_is_refused_once_past_the_cap_and_drained_to_its_end() -> None:
    channel = Channel([b"x" * 4000] * 5)
    await BodySizeLimit(Echo(), max_bytes=10_000)(scope(), channel.receive, channel.send)
    assert channel.status == 413
    assert channel.taken == 20_000


async def test_a_body_still_arriving_holds_no_in_flight_slot() -> None:
    limit = InFlightLimit(Echo(), limit=1)
    guarded = BodySizeLimit(limit, max_bytes=10_000)
    sent_half = False

    async def stalled_receive() -> dict:  # half a body, "more is coming", then nothing
        nonlocal sent_half
        if sent_half:
            await asyncio.sleep(3600)
        sent_half = True
        return {"type": "http.request", "body": b"half", "more_body": True}

    slow = asyncio.create_task(guarded(scope(), stalled_receive, Channel([]).send))
    await asyncio.sleep(0.05)
    good = Channel([b"digit"])
    await guarded(scope(), good.receive, good.send)
    assert good.status == 200
    assert good.sent[1]["body"] == b"1:digit"
    assert limit.in_flight == 0
    assert not slow.done()  # still waiting for its body, outside the limit
    slow.cancel()


async def test_the_guards_answer_v2_paths_in_the_protocols_error_shape() -> None:
    """{"error": <message>} under /v2 (the Open Inference Protocol), as its clients read it;
    the v2 probes are never refused."""
    infer = "/v2/models/mnist/infer"
    async with client(InFlightLimit(SlowApp(0.3), limit=1)) as c:
        busy = await asyncio.gather(c.post(infer), c.post(infer), c.get("/v2/health/ready"))
    assert sorted(r.status_code for r in busy) == [200, 200, 503]
    assert next(r for r in busy if r.status_code == 503).json() == {
        "error": "the server is busy (1 requests in progress); retry shortly"
    }
    async with client(RequestTimeout(SlowApp(1.0), seconds=0.2)) as c:
        late = await c.post(infer, content=b"x")
    assert late.json() == {"error": "the request took longer than 0.2 s to process"}
    async with client(BodySizeLimit(SlowApp(0), max_bytes=10)) as c:
        big = await c.post(infer, content=b"x" * 11)
        v1 = await c.post("/v1/predict", content=b"x" * 11)
    assert (big.status_code, big.json()) == (
        413,
        {"error": "the request body is over the limit of 10 bytes"},
    )
    assert v1.json()["error"] == "payload_too_large"
