"""Domain errors and FastAPI's own errors, mapped to JSON error shapes at the edge.

The JSON body is `{"error": <code>, "detail": <message>}`, but under `OIP_PREFIX` (the Open
Inference Protocol's router, `routes/v2.py`) it is the protocol's `{"error": <message>}`,
and a bad parameter is 400, not 422: for every answer on those paths, whether a route, the
routing (404, 405) or a guard (`service.limits`: 408, 413, 503, 504) gives it. Every error
answered is counted by its code.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.errors import ServiceError
from service.metrics import REJECTED
from service.schemas import ErrorBody, OipError

log = logging.getLogger("service.errors")

# What each status means on this API; every route documents the guards' statuses (408,
# 413, 500, 503, 504), the 422 of its parameters, and those it names.
STATUSES = {
    400: "undecodable or truncated image, or a malformed form",
    404: "no such version",
    408: "the request body did not arrive in time",
    409: "the version exists but cannot be read, fails its checksums or does not load",
    413: "too many bytes, pixels or images",
    415: "not an image type we accept",
    422: "missing field, no digit found, or a bad parameter",
    500: "the server failed",
    503: "no model loaded yet, the model store cannot be read, or the server is busy",
    504: "the answer was not ready in time",
}
GUARDS = (408, 413, 422, 500, 503, 504)

OIP_PREFIX = "/v2"
# The same statuses on the Open Inference Protocol's routes, where a bad parameter is 400.
OIP_STATUSES = {
    **STATUSES,
    400: "a malformed inference request (its JSON, binary data, tensor names, datatypes, "
    "shapes, sizes or values), an undecodable image, or a bad path parameter",
    404: "no such model, version or route",
    413: "the body is over the limit (--max-body-bytes), or an image over --max-pixels",
    415: "a Content-Encoding other than identity, or an image format we do not read",
    422: "an image without a digit",
}
OIP_GUARDS = (400, 408, 413, 500, 503, 504)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route that answers these statuses besides the guards',
    each with the one JSON error body."""
    return {
        status: {"model": ErrorBody, "description": STATUSES[status]}
        for status in sorted({*statuses, *GUARDS})
    }


def oip_error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`error_responses` for a route of the Open Inference Protocol: its error shape."""
    return {
        status: {"model": OipError, "description": OIP_STATUSES[status]}
        for status in sorted({*statuses, *OIP_GUARDS})
    }


def speaks_oip(path: str) -> bool:
    """Whether a request path is the Open Inference Protocol's."""
    return path == OIP_PREFIX or path.startswith(OIP_PREFIX + "/")


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, path: str = ""
) -> JSONResponse:
    """The JSON error shape of `path`; counts the rejection by its code."""
    REJECTED.labels(reason=code).inc()
    body = {"error": detail} if speaks_oip(path) else {"error": code, "detail": detail}
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Map domain errors and FastAPI's own errors to the JSON error shape."""

    async def on_service_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        return error_response(exc.status, exc.code, exc.detail, exc.headers, request.url.path)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        detail = str(exc.detail)
        if exc.status_code == 404:
            detail = f"no route {request.url.path}: see /docs for the API"
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            detail = f"{request.url.path} takes {allowed}, not {request.method}"
        return error_response(exc.status_code, code, detail, exc.headers, request.url.path)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        parts = [
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}"
            for err in exc.errors()
        ]
        path = request.url.path
        return error_response(
            400 if speaks_oip(path) else 422, "invalid_request", "; ".join(parts), path=path
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        detail = "the server failed; try again"
        return error_response(500, "internal_error", detail, path=request.url.path)

    app.add_exception_handler(Exception, on_unexpected)
    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
