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
from service.inference import classify_batch, predictions, probabilities_of_upload
from service.limits import send_json_error
from service.registry import LoadedModel, ModelRegistry
from service.schemas import BatchPrediction, ErrorBody, Prediction
from service.settings import Settings
from service.uploads import batch_images, single_image

log = logging.getLogger("service.predict")
PREDICT, BATCH = "/v1/predict", "/v1/predict/batch"


def requested_version(query_string: bytes) -> int | None:
    """The `version` query parameter: None when absent, else a positive integer."""
    if not query_string:
        return None
    values = [v for k, v in parse_qsl(query_string.decode("latin-1")) if k == "version"]
    if not values:
        return None
    if not values[-1].isdecimal() or int(values[-1]) < 1:
        raise InvalidParameter(f"query.version: must be a positive integer, not {values[-1]!r}")
    return int(values[-1])


async def _model(registry: ModelRegistry, version: int | None) -> LoadedModel:
    if version is None:
        return registry.get()
    return await run_in_threadpool(registry.get, version)  # may read and hash files


async def predict(scope: Scope, receive: Receive, send: Send) -> None:
    """Classify one image of a digit: multipart field `file`, or the raw image as the body."""
    state = scope["app"].state
    settings: Settings = state.settings
    loaded = await _model(state.registry, requested_version(scope["query_string"]))
    body = await read_body(receive)
    _, data = single_image(header(scope, b"content-type"), body)
    row = await probabilities_of_upload(
        loaded, data, settings.max_pixels, settings.offload_bytes, state.batcher
    )
    prediction = predictions(loaded, row[None])[0]
    await send_json(send, 200, prediction.model_dump_json().encode())


async def predict_batch(scope: Scope, receive: Receive, send: Send) -> None:
    """Classify several images (multipart field `files`, repeated) in one forward pass."""
    state = scope["app"].state
    settings: Settings = state.settings
    loaded = await _model(state.registry, requested_version(scope["query_string"]))
    body = await read_body(receive)
    files = batch_images(header(scope, b"content-type"), body, settings.max_batch)
    items = await classify_batch(loaded, files, settings.max_pixels, settings.offload_bytes)
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
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        400: "undecodable or truncated image, or a malformed form",
        404: "no such version",
        413: "too many bytes, pixels or images",
        415: "not an image type we accept",
        422: "missing field, blank image or bad version",
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


def _version_only(version: VersionQuery = None) -> None:
    """The parameters the two endpoints take, for the schema."""


def _documented(path: str, handler: Any, answer: type, body: dict[str, Any]) -> APIRoute:
    """How FastAPI's schema shows one of the endpoints above."""
    return APIRoute(
        path,
        _version_only,
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
