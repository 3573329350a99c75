"""Domain errors and FastAPI's own errors, mapped to the one JSON error shape.

The JSON body is `{"error": <code>, "detail": <message>}`; every error answered is counted
by its code.
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
from service.schemas import ErrorBody

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


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route that answers these statuses besides the guards',
    each with the one JSON error body."""
    return {
        status: {"model": ErrorBody, "description": STATUSES[status]}
        for status in sorted({*statuses, *GUARDS})
    }


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The one JSON error shape; counts the rejection by its code."""
    REJECTED.labels(reason=code).inc()
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Map domain errors and FastAPI's own errors to the JSON error shape."""

    async def on_service_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        return error_response(exc.status, exc.code, exc.detail, exc.headers)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        detail = str(exc.detail)
        if exc.status_code == 404:
            detail = f"no route {request.url.path}: see /docs for the API"
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            detail = f"{request.url.path} takes {allowed}, not {request.method}"
        return error_response(exc.status_code, code, detail, exc.headers)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        parts = [
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}"
            for err in exc.errors()
        ]
        return error_response(422, "invalid_request", "; ".join(parts))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal_error", "the server failed; try again")

    app.add_exception_handler(Exception, on_unexpected)
    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
