"""Domain errors: what a client can cause or meet, each with the status and code the HTTP
edge answers it with (`service.routes.errors` maps them to JSON in one place).

The message is written for the person who sent the request: it names the bad value and says
what to do instead. This module imports nothing, so the pure image and model code can raise
these errors without pulling in a web framework.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the errors a client can cause or meet; `status` and `code` go on the wire."""

    status = 400
    code = "bad_request"

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class UndecodableImage(ServiceError):
    """An upload that is empty, truncated or corrupt, or not an image at all."""

    status, code = 400, "undecodable_image"


class BadRequestBody(ServiceError):
    """A multipart body that is malformed, has part headers over python-multipart's
    limits, or has too many parts."""

    status, code = 400, "bad_request_body"


class InvalidInferenceRequest(ServiceError):
    """An Open Inference Protocol request whose JSON, tensors or binary data do not add up."""

    status, code = 400, "invalid_inference_request"


class UnsupportedEncoding(ServiceError):
    """A Content-Encoding the Open Inference Protocol's routes do not read."""

    status, code = 415, "unsupported_content_encoding"


class ImageTooLarge(ServiceError):
    """An image with more pixels than `--max-pixels` or a side over the limit (read from
    its header, before any pixel is decoded), or a JPEG with too many scans or segments."""

    status, code = 413, "image_too_large"


class TooManyImages(ServiceError):
    """A /v1/predict/batch request with more images than `--max-batch`."""

    status, code = 413, "too_many_images"


class UnsupportedImage(ServiceError):
    """A declared or detected type that is not PNG, JPEG, GIF, BMP or WebP (SVG,
    TIFF, HEIC, text...), or a request with no Content-Type."""

    status, code = 415, "unsupported_media_type"


class MissingImage(ServiceError):
    """A form without its image field, or whose field is text, not a file."""

    status, code = 422, "missing_image"


class BlankImage(ServiceError):
    """An image in which no digit is found (`no_digit`)."""

    status, code = 422, "blank_image"

    @classmethod
    def no_digit(cls) -> BlankImage:
        """The one wording of an upload without a digit."""
        return cls(
            "no digit found: the image holds no ink that looks like a digit (it is blank; the "
            "ink is less than a tenth darker than its paper; the digit spans less than 4% of "
            "the picture's longer side; or there are only specks, lines or a texture)"
        )


class ModelNotFound(ServiceError):
    """An Open Inference Protocol request for a model name this service does not
    serve."""

    status, code = 404, "model_not_found"


class VersionNotFound(ServiceError):
    """A version number the store does not hold."""

    status, code = 404, "version_not_found"


class CardNotFound(ServiceError):
    """A version published without a model card (before cards existed, or by hand)."""

    status, code = 404, "card_not_found"


class VersionUnavailable(ServiceError):
    """A version that exists in the store but cannot be served now: it fails to load (bad
    files, a failed verification) or its files cannot be read."""

    status, code = 409, "version_unavailable"


class ModelNotReady(ServiceError):
    """No version loaded yet, or a draining worker."""

    status, code = 503, "model_not_ready"


class StoreUnavailable(ServiceError):
    """The model store (its folder, or its aliases.json) cannot be read or parsed."""

    status, code = 503, "store_unavailable"
