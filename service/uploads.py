"""Get the image bytes out of a request body: multipart form fields or a raw image/* body."""

from __future__ import annotations

from service.errors import MissingImage, TooManyImages, UnsupportedImage
from service.forms import Part, parse_form

# Content types we take as "an image, look at its bytes"; the bytes decide the format.
RAW_TYPES = ("image/", "application/octet-stream")
REFUSED_IMAGE_TYPES = ("image/svg+xml", "image/tiff", "image/heic", "image/heif", "image/avif")
ACCEPTED = (
    "multipart/form-data with a field 'file', or the image itself as the body (image/png, "
    "image/jpeg, image/gif, image/bmp or image/webp)"
)
MAX_FIELDS = 16  # text fields a form may carry besides its files


def _media(content_type: str) -> str:
    """The media type of a Content-Type value, without parameters, lower case."""
    return content_type.split(";", 1)[0].strip().lower()


def _check_declared_type(content_type: str, what: str) -> None:
    media = _media(content_type)
    if media in REFUSED_IMAGE_TYPES:
        raise UnsupportedImage(f"{what} is {media}: send PNG, JPEG, GIF, BMP or WebP")
    if media and not media.startswith(RAW_TYPES):
        raise UnsupportedImage(f"{what} is {media!r}, not an image: send {ACCEPTED}")


def _is_multipart(content_type: str) -> bool:
    return _media(content_type) == "multipart/form-data"


def single_image(content_type: str, body: bytes) -> tuple[str | None, bytes]:
    """(file name, bytes) of the one image a /v1/predict request carries."""
    if _is_multipart(content_type):
        parts = parse_form(body, content_type, max_parts=4 + MAX_FIELDS)
        upload = next((part for part in parts if part.name == "file"), None)
        if upload is None:
            fields = ", ".join(repr(part.name) for part in parts) or "none"
            raise MissingImage(f"multipart field 'file' is missing (fields sent: {fields})")
        if not upload.is_file:
            raise MissingImage("multipart field 'file' must be a file upload, not text")
        _check_declared_type(upload.content_type, f"the part 'file' ({upload.filename})")
        return upload.filename, upload.data
    if not content_type:
        raise UnsupportedImage(f"the request has no Content-Type: send {ACCEPTED}")
    _check_declared_type(content_type, "the request body")
    return None, body


def batch_images(content_type: str, body: bytes, max_batch: int) -> list[tuple[str | None, bytes]]:
    """(file name, bytes) of each file in the multipart field `files`, in order."""
    if not _is_multipart(content_type):
        raise UnsupportedImage(
            f"a batch must be multipart/form-data with fields 'files', not {content_type!r}"
        )
    parts = parse_form(body, content_type, max_parts=max_batch * 4 + MAX_FIELDS)
    uploads: list[Part] = [p for p in parts if p.name == "files" and p.is_file]
    if not uploads:
        raise MissingImage("multipart field 'files' is missing: send one part per image")
    if len(uploads) > max_batch:
        raise TooManyImages(f"{len(uploads)} images sent; a batch holds at most {max_batch}")
    return [(u.filename, u.data) for u in uploads]
