"""Split a multipart/form-data body that is already in memory into its parts.

The body is capped before it gets here (`max_body_bytes`), so the parts stay in memory:
Starlette's form parser spools each file part to a `SpooledTemporaryFile` through a thread
pool, and python-multipart's streaming state machine walks the body in Python; for a
28x28 PNG those cost 80 and 45 us (bench/). With the whole body at hand, the delimiters of
RFC 2046 (CRLF, "--", the boundary) are found by `bytes.split` in C. Header parameters
(quoting, RFC 2231 file names) are python-multipart's `parse_options_header`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from python_multipart.multipart import parse_options_header

from service.errors import BadRequestBody

# python-multipart's own limits (0.0.34: DEFAULT_MAX_HEADER_COUNT, DEFAULT_MAX_HEADER_SIZE):
# header parameters are parsed in quadratic time, so their length must be bounded.
MAX_HEADER_COUNT = 8
MAX_HEADER_SIZE = 4096 + 128


@dataclass(frozen=True)
class Part:
    """One part of a form: its field name, file name (None for a text field), declared
    content type and bytes."""

    name: str
    filename: str | None
    content_type: str
    data: bytes


def _text(value: bytes) -> str:
    # Browsers send UTF-8 field and file names; anything else must not raise.
    return value.decode("utf-8", errors="replace")


def _headers(block: bytes) -> dict[bytes, bytes]:
    lines = block.split(b"\r\n")
    if len(lines) > MAX_HEADER_COUNT:
        raise BadRequestBody(f"a form part has over {MAX_HEADER_COUNT} header lines")
    headers = {}
    for line in lines:
        if len(line) > MAX_HEADER_SIZE:
            raise BadRequestBody(f"a form part has a header line over {MAX_HEADER_SIZE} bytes")
        name, colon, value = line.partition(b":")
        if not colon:
            raise BadRequestBody(f"a form part has a malformed header line {_text(line[:60])!r}")
        headers[name.strip().lower()] = value.strip()
    return headers


def _part(segment: bytes) -> Part:
    # After the delimiter: optional padding, CRLF, header lines, an empty line, the data.
    segment = segment.lstrip(b" \t")
    if not segment.startswith(b"\r\n"):
        raise BadRequestBody("the multipart body has text after a boundary on the same line")
    if segment.startswith(b"\r\n\r\n"):
        raise BadRequestBody("a form part has no Content-Disposition header")
    end = segment.find(b"\r\n\r\n", 2)
    if end < 0:
        raise BadRequestBody("a form part's headers do not end with an empty line")
    headers = _headers(segment[2:end])
    name, filename = _disposition(headers.get(b"content-disposition", b""))
    return Part(
        name=_text(name),
        filename=None if filename is None else _text(filename),
        content_type=_text(headers.get(b"content-type", b"")),
        data=segment[end + 4 :],
    )


# What browsers, curl and httpx send: two plain quoted values, no escapes, no RFC 2231.
_PLAIN_DISPOSITION = re.compile(rb'form-data; name="([^"\\]*)"(?:; filename="([^"\\]*)")?')


def _disposition(value: bytes) -> tuple[bytes, bytes | None]:
    """(name, file name or None) of a part's Content-Disposition header."""
    plain = _PLAIN_DISPOSITION.fullmatch(value)
    if plain:  # 1 us instead of parse_options_header's 4, the same answer
        return plain[1], plain[2]
    _, options = parse_options_header(value)
    if b"name" not in options:
        raise BadRequestBody("a form part has no name in its Content-Disposition header")
    return options[b"name"], options.get(b"filename") or _extended_filename(value)


def _extended_filename(value: bytes) -> bytes | None:
    """The `filename*` of RFC 2231/5987 (`utf-8''%E6%95%B0.png`), which requests and urllib3
    1.x send for non-ASCII names and parse_options_header ignores: the standard library's
    e-mail header parser decodes it."""
    if b"filename*" not in value.lower():
        return None
    header = Message()
    header["content-disposition"] = value.decode("latin-1")
    name = header.get_filename()
    return None if name is None else name.encode("utf-8")


def parse_form(body: bytes, content_type: str, max_parts: int) -> list[Part]:
    """The parts of a multipart/form-data `body`, in order; 400 when it is malformed or
    has more than `max_parts` parts."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequestBody("the multipart Content-Type has no boundary parameter")
    # Every delimiter is CRLF "--" boundary; the first may open the body without the CRLF.
    segments = (b"\r\n" + body).split(b"\r\n--" + boundary)
    if len(segments) < 2 or not segments[-1].startswith(b"--"):
        raise BadRequestBody("the multipart body does not end with its closing boundary")
    parts = segments[1:-1]  # [0] is the preamble, [-1] the close delimiter and epilogue
    if len(parts) > max_parts:
        raise BadRequestBody(f"the form has {len(parts)} parts, more than {max_parts}")
    return [_part(segment) for segment in parts]
