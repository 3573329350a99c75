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
ACCEPTED_BATCH = "multipart/form-data with one field 'files' per image"
FORMATS = "PNG, JPEG, GIF, BMP or WebP"
# Declared types read as they are, as clients send them (no parameters): the usual case.
READ_TYPES = frozenset(
    (
        "",
        "application/octet-stream",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/bmp",
        "image/webp",
    )
)
MAX_FIELDS = 16  # text fields a form may carry besides its files


def _media(content_type: str) -> str:
    """The media type of a Content-Type value, without parameters, lower case."""
    return content_type.split(";", 1)[0].strip().lower()


def refused_type(content_type: str, what: str, accepted: str) -> UnsupportedImage | None:
    """The 415 for `what` (a request body, a form part) declared as `content_type`: an image
    format we do not read, or no image at all (a hint to send `accepted`); None for an
    image type we read, a generic one (application/octet-stream: the bytes decide) or none.
    One wording for both prediction routes."""
    media = _media(content_type)
    if media in REFUSED_IMAGE_TYPES:
        return UnsupportedImage(f"{what} is {media}: send {FORMATS}")
    if media and not media.startswith(RAW_TYPES):
        return UnsupportedImage(f"{what} is {media!r}, not an image: send {accepted}")
    return None


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
        refused = _refused_part("file", upload)
        if refused:
            raise refused
        return upload.filename, upload.data
    if not content_type:
        raise UnsupportedImage(f"the request has no Content-Type: send {ACCEPTED}")
    refused = refused_type(content_type, "the request body", ACCEPTED)
    if refused:
        raise refused
    return None, body


def batch_images(
    content_type: str, body: bytes, max_batch: int
) -> list[tuple[str | None, bytes | UnsupportedImage]]:
    """(file name, bytes) of each file in the multipart field `files`, in order; in place of
    the bytes, the 415 of a file declared as a type we do not read (`refused_type`, as
    /v1/predict words it), which costs the other files nothing."""
    if not _is_multipart(content_type):
        if not content_type:
            raise UnsupportedImage(f"the request has no Content-Type: send {ACCEPTED_BATCH}")
        raise UnsupportedImage(
            f"the request body is {_media(content_type)!r}: send {ACCEPTED_BATCH}"
        )
    parts = parse_form(body, content_type, max_parts=max_batch * 4 + MAX_FIELDS)
    uploads: list[Part] = [p for p in parts if p.name == "files" and p.is_file]
    if not uploads:
        raise MissingImage("multipart field 'files' is missing: send one part per image")
    if len(uploads) > max_batch:
        raise TooManyImages(f"{len(uploads)} images sent; a batch holds at most {max_batch}")
    return [(u.filename, _refused_part("files", u) or u.data) for u in uploads]


def _refused_part(field: str, part: Part) -> UnsupportedImage | None:
    """`refused_type` of a form part; the usual declared types (READ_TYPES) are looked up,
    not parsed: a batch has up to 64 parts."""
    if part.content_type in READ_TYPES:
        return None
    named = "" if part.filename is None else f" ({part.filename})"
    return refused_type(part.content_type, f"the part {field!r}{named}", FORMATS)
