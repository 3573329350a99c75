"""Forms split by python-multipart, on bodies encoded by a real client (httpx) and broken ones."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from python_multipart.multipart import parse_options_header

from service.errors import BadRequestBody
from service.forms import parse_form


def encode(**kwargs: object) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://t/", **kwargs)  # type: ignore[arg-type]
    return request.read(), request.headers["content-type"]


def test_files_and_fields_in_order_byte_exact() -> None:
    rng = np.random.default_rng(0)
    # Binary data full of CR, LF and dashes, as image bytes can be.
    blobs = [bytes(rng.choice([13, 10, 45, 0, 255], size=n).astype(np.uint8)) for n in (0, 1, 5000)]
    files = [("files", (f"{i}.png", blob, "image/png")) for i, blob in enumerate(blobs)]
    body, content_type = encode(files=files, data={"note": "héllo"})
    parts = parse_form(body, content_type, max_parts=10)
    assert [(p.name, p.filename) for p in parts] == [
        ("note", None),
        ("files", "0.png"),
        ("files", "1.png"),
        ("files", "2.png"),
    ]
    assert parts[0].data.decode() == "héllo"
    assert [p.data for p in parts[1:]] == blobs
    assert parts[1].content_type == "image/png"


def test_epilogue_and_unicode_file_name() -> None:
    body = (
        b"--xyz\r\n"
        b'Content-Disposition: form-data; name="file"; filename="d\xc3\xadgito.png"\r\n'
        b"\r\nDATA\r\n--xyz--\r\nand an epilogue"
    )
    (part,) = parse_form(body, "multipart/form-data; boundary=xyz", max_parts=4)
    assert (part.name, part.filename, part.content_type, part.data) == (
        "file",
        "dígito.png",
        "",
        b"DATA",
    )


def test_rfc_2231_file_names_are_decoded() -> None:
    """python-multipart's parse_options_header drops `filename*`; requests sends it."""
    disposition = b"form-data; name=\"file\"; filename*=UTF-8''d%C3%ADgito.png"
    body = b"--x\r\nContent-Disposition: " + disposition + b"\r\n\r\nA\r\n--x--"
    (part,) = parse_form(body, "multipart/form-data; boundary=x", max_parts=1)
    assert (part.name, part.filename) == ("file", "d\u00edgito.png")


@pytest.mark.parametrize(
    "disposition",
    [
        b'form-data; name="files"; filename="d.png"',
        b'form-data; name="file"',
        b'form-data; name=""; filename=""',
        b'form-data; name="a b"; filename="C:\\photos\\d.png"',  # old IE: a whole path
        b'form-data; name="file"; filename="say \\"hi\\".png"',
        b"form-data; name=file; filename=d.png",
        b'Form-Data;name="file";  filename="d.png"',
        b'form-data; filename="d.png"; name="file"',
    ],
)
def test_plain_content_dispositions_read_as_python_multipart_reads_them(
    disposition: bytes,
) -> None:
    _, options = parse_options_header(disposition)
    body = b"--x\r\nContent-Disposition: " + disposition + b"\r\n\r\nA\r\n--x--"
    (part,) = parse_form(body, "multipart/form-data; boundary=x", max_parts=1)
    filename = options.get(b"filename")
    assert (part.name, part.filename) == (
        options[b"name"].decode(),
        None if filename is None else filename.decode(),
    )


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"--x--\r\n", "multipart/form-data", "no boundary parameter"),
        (b"--x\r\nbroken multipart", "multipart/form-data; boundary=x", "malformed"),
        (b"no delimiter at all", "multipart/form-data; boundary=x", "malformed"),
        (b"preamble\r\n--x\r\n\r\nA\r\n--x--", "multipart/form-data; boundary=x", "malformed"),
        (
            b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nA\r\n--x',
            "multipart/form-data; boundary=x",
            "closing boundary",
        ),
        (
            b'--x\r\nContent-Disposition: form-data; filename="a"\r\n\r\nA\r\n--x--',
            "multipart/form-data; boundary=x",
            "no name",
        ),
        (b"--x\r\n\r\nA\r\n--x--", "multipart/form-data; boundary=x", "no Content-Disposition"),
        (
            b'--x\r\nContent-Disposition: form-data; name="a"\r\nA\r\n--x--',
            "multipart/form-data; boundary=x",
            "malformed",
        ),
        (
            b'--x\r\nContent-Disposition: form-data; name="a"\r\nbad header\r\n\r\nA\r\n--x--',
            "multipart/form-data; boundary=x",
            "malformed",
        ),
        (b"--xjunk\r\n\r\nA\r\n--x--", "multipart/form-data; boundary=x", "malformed"),
    ],
)
def test_malformed_bodies_are_400_with_the_reason(
    body: bytes, content_type: str, message: str
) -> None:
    with pytest.raises(BadRequestBody, match=message) as caught:
        parse_form(body, content_type, max_parts=4)
    assert caught.value.status == 400


def test_too_many_parts() -> None:
    body, content_type = encode(files=[("files", (f"{i}", b"x")) for i in range(5)])
    assert len(parse_form(body, content_type, max_parts=5)) == 5
    with pytest.raises(BadRequestBody, match="the form has more than 4 parts"):
        parse_form(body, content_type, max_parts=4)


@given(st.binary(max_size=300), st.sampled_from([b"", b"--x", b"\r\n--x", b"--x--", b"\r\n\r\n"]))
@settings(max_examples=300, deadline=None)
def test_any_body_parses_or_is_a_400(noise: bytes, splice: bytes) -> None:
    body = b"--x\r\nContent-Disposition: form-data; name=file\r\n\r\n" + noise + splice + noise
    try:
        parts = parse_form(body, "multipart/form-data; boundary=x", max_parts=8)
    except BadRequestBody:
        return
    assert all(isinstance(p.data, bytes) for p in parts)


def test_a_huge_part_header_is_refused_at_python_multiparts_limit() -> None:
    """64,000 RFC 2231 continuations took 12 s to parse (quadratic): refused at 4 KB."""
    disposition = b'form-data; name="file"; ' + b"; ".join(
        b"filename*%d=A" % i for i in range(64_000)
    )
    body = b"--x\r\nContent-Disposition: " + disposition + b"\r\n\r\nA\r\n--x--"
    with pytest.raises(BadRequestBody, match="header size"):
        parse_form(body, "multipart/form-data; boundary=x", max_parts=1)


def test_a_part_with_too_many_header_lines_is_refused() -> None:
    headers = b"".join(b"X-%d: y\r\n" % i for i in range(9))
    body = b'--x\r\nContent-Disposition: form-data; name="f"\r\n' + headers + b"\r\nA\r\n--x--"
    with pytest.raises(BadRequestBody, match="header count"):
        parse_form(body, "multipart/form-data; boundary=x", max_parts=1)


@pytest.mark.parametrize(
    ("disposition", "content_type", "is_file"),
    [
        (b'form-data; name="file"; filename="a.png"', b"", True),
        (b"form-data; name=\"file\"; filename*=utf-8''%E6%95%B0.png", b"", True),
        (b'form-data; name="file"', b"image/png", True),  # React Native, .NET
        (b'form-data; name="file"', b"text/plain", False),
        (b'form-data; name="file"', b"", False),
    ],
)
def test_a_file_part_names_a_file_or_declares_an_image(
    disposition: bytes, content_type: bytes, is_file: bool
) -> None:
    typed = b"Content-Type: " + content_type + b"\r\n" if content_type else b""
    body = b"--x\r\nContent-Disposition: " + disposition + b"\r\n" + typed + b"\r\nA\r\n--x--"
    (part,) = parse_form(body, "multipart/form-data; boundary=x", max_parts=1)
    assert part.is_file is is_file


def test_a_boundary_over_python_multiparts_limit_is_400() -> None:
    boundary = "B" * 300  # python-multipart refuses boundaries over 256 bytes
    body = f'--{boundary}\r\nContent-Disposition: form-data; name="a"\r\n\r\nA\r\n--{boundary}--'
    with pytest.raises(BadRequestBody, match="malformed"):
        parse_form(body.encode(), f"multipart/form-data; boundary={boundary}", max_parts=4)


@pytest.mark.parametrize(
    "disposition",
    [
        b'form-data; name="file"; filename*0*=a; filename*=b',  # continuations out of order
        b"form-data; name=\"file\"; filename*=idna''x",  # a codec that cannot decode
        b"form-data; name=\"file\"; filename*=unicode-escape''%5Cud800",  # a lone surrogate
    ],
)
def test_an_undecodable_extended_file_name_still_names_a_file(disposition: bytes) -> None:
    body = b"--x\r\nContent-Disposition: " + disposition + b"\r\n\r\nA\r\n--x--"
    (part,) = parse_form(body, "multipart/form-data; boundary=x", max_parts=1)
    assert part.is_file and part.name == "file" and part.data == b"A"
