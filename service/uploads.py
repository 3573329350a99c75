"""Get the image bytes out of a request: multipart form fields or a raw image/* body."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.requests import Request

from service.errors import MissingImage, TooManyImages, UnsupportedImage

# Content types we take as "an image, look at its bytes"; the bytes decide the format.
RAW_TYPES = ("image/", "application/octet-stream")
REFUSED_IMAGE_TYPES = ("image/svg+xml", "image/tiff", "image/heic", "image/heif", "image/avif")
ACCEPTED = "multipart/form-data with a field 'file', or an image/png or image/jpeg body"


def _check_declared_type(content_type: str, what: str) -> None:
    media = content_type.split(";", 1)[0].strip().lower()
    if media in REFUSED_IMAGE_TYPES:
        raise UnsupportedImage(f"{what} is {media}: send PNG, JPEG, GIF, BMP or WebP")
    if media and not media.startswith(RAW_TYPES):
        raise UnsupportedImage(f"{what} is {media!r}, not an image: send {ACCEPTED}")


async def read_single_image(request: Request) -> tuple[str | None, bytes]:
    """(file name, bytes) of the one image a /v1/predict request carries."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        async with request.form(max_files=4, max_fields=16) as form:  # closes temp files
            upload = form.get("file")
            if upload is None:
                fields = ", ".join(repr(k) for k in form) or "none"
                raise MissingImage(f"multipart field 'file' is missing (fields sent: {fields})")
            if not isinstance(upload, UploadFile):
                raise MissingImage("multipart field 'file' must be a file upload, not text")
            _check_declared_type(upload.content_type or "", f"the part 'file' ({upload.filename})")
            return upload.filename, await upload.read()
    if not content_type:
        raise UnsupportedImage(f"the request has no Content-Type: send {ACCEPTED}")
    _check_declared_type(content_type, "the request body")
    return None, await request.body()


async def read_batch_images(request: Request, max_batch: int) -> list[tuple[str | None, bytes]]:
    """(file name, bytes) of each file in the multipart field `files`, in order."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise UnsupportedImage(
            f"a batch must be multipart/form-data with fields 'files', not {content_type!r}"
        )
    async with request.form(max_files=max_batch * 4, max_fields=16) as form:
        uploads = [u for u in form.getlist("files") if isinstance(u, UploadFile)]
        if not uploads:
            raise MissingImage("multipart field 'files' is missing: send one part per image")
        if len(uploads) > max_batch:
            raise TooManyImages(f"{len(uploads)} images sent; a batch holds at most {max_batch}")
        return [(u.filename, await u.read()) for u in uploads]
