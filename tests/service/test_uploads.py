"""`service.uploads`: the image bytes out of a request body, and the declared types refused
with one wording for both prediction routes (the routes' answers: test_routes.py)."""

from __future__ import annotations

import pytest

from service.errors import UnsupportedImage
from service.uploads import READ_TYPES, batch_images, refused_type
from tests.uploads import digit_png


@pytest.mark.parametrize("declared", sorted(READ_TYPES))
def test_the_types_looked_up_are_ones_refused_type_reads(declared: str) -> None:
    assert refused_type(declared, "x", "y") is None


@pytest.mark.parametrize(
    ("declared", "detail"),
    [
        ("text/plain", "the body is 'text/plain', not an image: send an image"),
        ("Text/HTML; charset=utf-8", "the body is 'text/html', not an image: send an image"),
        ("image/svg+xml", "the body is image/svg+xml: send PNG, JPEG, GIF, BMP or WebP"),
        ("IMAGE/TIFF", "the body is image/tiff: send PNG, JPEG, GIF, BMP or WebP"),
    ],
)
def test_refused_types_are_415_and_say_what_to_send(declared: str, detail: str) -> None:
    refused = refused_type(declared, "the body", "an image")
    assert isinstance(refused, UnsupportedImage) and refused.status == 415
    assert refused.detail == detail


@pytest.mark.parametrize("declared", ["image/png; name=a.png", "IMAGE/PNG", "image/x-portable"])
def test_image_types_with_parameters_or_case_are_read(declared: str) -> None:
    assert refused_type(declared, "x", "y") is None


def test_a_batch_keeps_each_refusal_in_its_place() -> None:
    parts = [
        ("a.png", "image/png", digit_png()),
        ("b.txt", "text/plain", b"hi"),
        ("c.png", "image/png; q=1", digit_png()),
    ]
    body = b"".join(
        b"--b0undary\r\nContent-Disposition: form-data; name=files; filename="
        + f"{name}\r\nContent-Type: {declared}\r\n\r\n".encode()
        + data
        + b"\r\n"
        for name, declared, data in parts
    )
    body += b"--b0undary--\r\n"
    files = batch_images("multipart/form-data; boundary=b0undary", body, max_batch=4)
    assert [name for name, _ in files] == ["a.png", "b.txt", "c.png"]
    assert files[0][1] == files[2][1] == digit_png()
    assert isinstance(files[1][1], UnsupportedImage)
    assert files[1][1].detail.startswith("the part 'files' (b.txt) is 'text/plain'")


def test_a_refused_part_without_a_file_name_is_named_by_its_field() -> None:
    body = (
        b"--b0undary\r\nContent-Disposition: form-data; name=files\r\n"
        b"Content-Type: image/svg+xml\r\n\r\n<svg/>\r\n--b0undary--\r\n"
    )
    [(name, refused)] = batch_images("multipart/form-data; boundary=b0undary", body, 4)
    assert name is None and isinstance(refused, UnsupportedImage)
    assert refused.detail == "the part 'files' is image/svg+xml: send PNG, JPEG, GIF, BMP or WebP"
