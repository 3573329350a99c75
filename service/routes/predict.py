"""POST /v1/predict and /v1/predict/batch, as plain ASGI endpoints.

These two are the hot path. Under FastAPI's request handling (parameter and dependency
solving, response-model validation, the form parser's temporary files, a dozen middleware
and routing layers) a 28x28 PNG request cost about twice the prediction itself
(BENCHMARKS.md), so `service.app.HotPath` sends their requests straight here, inside the
app's guards and metrics. They read the body, the `version` query parameter and the app
state themselves, and answer their own errors in the one JSON shape. `DOCUMENTED`
describes them to FastAPI's OpenAPI schema, which lists only FastAPI's own routes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Query
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from service.asgi import header, read_body, send_json
from service.errors import InvalidParameter, ServiceError
from service.inference import classify_batch, explanation, predictions, read_upload
from service.limits import send_json_error
from service.registry import LoadedModel, ModelRegistry
from service.schemas import BatchPrediction, ErrorBody, Prediction
from service.settings import Settings
from service.uploads import batch_images, single_image

log = logging.getLogger("service.predict")
PREDICT, BATCH = "/v1/predict", "/v1/predict/batch"


def _query(query_string: bytes, name: str) -> str | None:
    """The last value of the query parameter `name`, or None when absent."""
    if not query_string:
        return None
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    values = [v for k, v in pairs if k == name]
    return values[-1] if values else None


def requested_version(query_string: bytes) -> int | None:
    """The `version` query parameter: None when absent, else a positive integer."""
    value = _query(query_string, "version")
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18 or int(value) < 1:
        raise InvalidParameter(f"query.version: must be a positive integer, not {value!r}")
    return int(value)


def explain_requested(query_string: bytes) -> bool:
    """The `explain` query parameter: true/false (also 1/0, yes/no, on/off), false when
    absent."""
    value = _query(query_string, "explain")
    if value is None:
        return False
    if value.lower() not in _BOOLEANS:
        raise InvalidParameter(f"query.explain: must be true or false, not {value!r}")
    return _BOOLEANS[value.lower()]


_BOOLEANS = {
    **dict.fromkeys(("true", "1", "yes", "on"), True),  # "on": an HTML checkbox's value
    **dict.fromkeys(("false", "0", "no", "off"), False),
}


async def _model(registry: ModelRegistry, version: int | None) -> LoadedModel:
    if version is None:
        return registry.get()
    return await run_in_threadpool(registry.get, version)  # may read and hash files


async def predict(scope: Scope, receive: Receive, send: Send) -> None:
    """Classify one image of a digit: multipart field `file`, or the raw image as the body.
    With `?explain=true` the answer also shows the 28x28 sample the model saw and where in
    the upload the digit was found."""
    state = scope["app"].state
    settings: Settings = state.settings
    query = scope["query_string"]
    loaded = await _model(state.registry, requested_version(query))
    explain = explain_requested(query)
    body = await read_body(receive)
    _, data = single_image(header(scope, b"content-type"), body)
    reading = await read_upload(
        loaded, data, settings.max_pixels, settings.offload_bytes, state.batcher, explain
    )
    note = None
    if reading.sample is not None and reading.box is not None:
        note = explanation(reading.sample, reading.box)
    prediction = predictions(loaded, reading.probabilities[None], [note])[0]
    await send_json(send, 200, prediction.model_dump_json().encode())


async def predict_batch(scope: Scope, receive: Receive, send: Send) -> None:
    """Classify several images (multipart field `files`, repeated) in one forward pass;
    `?explain=true` as for one image."""
    state = scope["app"].state
    settings: Settings = state.settings
    query = scope["query_string"]
    loaded = await _model(state.registry, requested_version(query))
    explain = explain_requested(query)
    body = await read_body(receive)
    files = batch_images(header(scope, b"content-type"), body, settings.max_batch)
    items = await classify_batch(
        loaded, files, settings.max_pixels, settings.offload_bytes, explain
    )
    answer = BatchPrediction(model=loaded.name, version=loaded.version, results=items)
    await send_json(send, 200, answer.model_dump_json().encode())


class Endpoint:
    """An ASGI endpoint that answers its own errors: a ServiceError becomes the JSON error,
    anything else a logged 500 (no FastAPI error handlers run on this path)."""

    def __init__(self, handler: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.handler(scope, receive, send)
        except ServiceError as exc:
            await send_json_error(send, exc.status, exc.code, exc.detail, exc.headers)
        except ClientDisconnect:
            pass  # nobody to answer
        except Exception:
            log.exception("%s failed", scope["path"])
            await send_json_error(send, 500, "internal_error", "the server failed; try again")


ROUTES = [
    Route(PREDICT, Endpoint(predict), methods=["POST"], name="predict"),
    Route(BATCH, Endpoint(predict_batch), methods=["POST"], name="predict_batch"),
]

# What OpenAPI says about them.
VersionQuery = Annotated[
    int | None, Query(ge=1, description="serve this version instead of the alias's")
]
ExplainQuery = Annotated[
    bool,
    Query(description="also answer the 28x28 sample the model saw and the digit's box"),
]
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        400: "undecodable or truncated image, or a malformed form",
        404: "no such version",
        413: "too many bytes, pixels or images",
        415: "not an image type we accept",
        422: "missing field, no digit found, or a bad query parameter",
        503: "no model loaded yet, or the server is busy",
    }.items()
}
_binary = {"type": "string", "format": "binary"}
SINGLE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["file"], "properties": {"file": _binary}}
            },
            "image/png": {"schema": _binary},
            "image/jpeg": {"schema": _binary},
        },
    }
}
BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {"files": {"type": "array", "items": _binary}},
                }
            }
        },
    }
}


def _parameters(version: VersionQuery = None, explain: ExplainQuery = False) -> None:
    """The parameters the two endpoints take, for the schema."""


def _documented(path: str, handler: Any, answer: type, body: dict[str, Any]) -> APIRoute:
    """How FastAPI's schema shows one of the endpoints above."""
    return APIRoute(
        path,
        _parameters,
        methods=["POST"],
        response_model=answer,
        responses=ERRORS,
        openapi_extra=body,
        tags=["predict"],
        name=handler.__name__,
        summary=handler.__name__.replace("_", " ").title(),
        description=handler.__doc__,
    )


DOCUMENTED = [
    _documented(PREDICT, predict, Prediction, SINGLE_BODY),
    _documented(BATCH, predict_batch, BatchPrediction, BATCH_BODY),
]
