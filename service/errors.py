"""Domain errors, each with its HTTP status, mapped to JSON responses in one place.

The message is written for the person who sent the request: it names the bad value and says
what to do instead. The JSON body is `{"error": <code>, "detail": <message>}`.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.metrics import REJECTED


class ServiceError(Exception):
    """Base of the errors a client can cause or meet; `status` and `code` go on the wire."""

    status = 400
    code = "bad_request"

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class UndecodableImage(ServiceError):
    status, code = 400, "undecodable_image"


class BadRequestBody(ServiceError):
    status, code = 400, "bad_request_body"


class ImageTooLarge(ServiceError):
    status, code = 413, "image_too_large"


class PayloadTooLarge(ServiceError):
    status, code = 413, "payload_too_large"


class TooManyImages(ServiceError):
    status, code = 413, "too_many_images"


class UnsupportedImage(ServiceError):
    status, code = 415, "unsupported_media_type"


class MissingImage(ServiceError):
    status, code = 422, "missing_image"


class BlankImage(ServiceError):
    status, code = 422, "blank_image"


class InvalidParameter(ServiceError):
    status, code = 422, "invalid_request"


class VersionNotFound(ServiceError):
    status, code = 404, "version_not_found"


class VersionUnavailable(ServiceError):
    status, code = 409, "version_unavailable"


class ModelNotReady(ServiceError):
    status, code = 503, "model_not_ready"


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
        return error_response(exc.status_code, code, str(exc.detail), exc.headers)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        parts = [
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}"
            for err in exc.errors()
        ]
        return error_response(422, "invalid_request", "; ".join(parts))

    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
