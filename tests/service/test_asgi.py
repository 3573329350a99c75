"""The hand-written ASGI steps of the hot path: headers, body, JSON answer."""

from __future__ import annotations

import json

import pytest
from starlette.requests import ClientDisconnect
from starlette.types import Message

from service.asgi import header, read_body, send_json

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def receiver(*messages: Message):  # type: ignore[no-untyped-def]
    queue = list(messages)

    async def receive() -> Message:
        return queue.pop(0)

    return receive


def test_header_is_the_first_value_or_empty() -> None:
    scope = {"headers": [(b"content-type", b"image/png"), (b"content-type", b"text/plain")]}
    assert header(scope, b"content-type") == "image/png"
    assert header(scope, b"content-length") == ""


async def test_read_body_joins_the_chunks() -> None:
    receive = receiver(
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"", "more_body": True},
        {"type": "http.request", "body": b"c"},
    )
    assert await read_body(receive) == b"abc"


async def test_read_body_stops_when_the_client_leaves() -> None:
    receive = receiver(
        {"type": "http.request", "body": b"ab", "more_body": True}, {"type": "http.disconnect"}
    )
    with pytest.raises(ClientDisconnect):
        await read_body(receive)


async def test_send_json_declares_type_and_length() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    body = json.dumps({"digit": 7}).encode()
    await send_json(send, 200, body)
    assert sent[0]["status"] == 200
    assert dict(sent[0]["headers"]) == {
        b"content-type": b"application/json",
        b"content-length": str(len(body)).encode(),
    }
    assert sent[1] == {"type": "http.response.body", "body": body}
