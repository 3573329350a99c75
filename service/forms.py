"""A multipart/form-data body, already in memory and capped, split into its parts by
python-multipart's parser (the one Starlette uses), with its limits on part headers: at most
8 header lines per part, each at most 4,224 bytes (its defaults since its denial-of-service
advisories; a 7 MB Content-Disposition once froze a worker for 12.6 s).

Not `Request.form()`: here a part is a file when it names one (`filename`, or RFC 2231's
`filename*`, which requests and urllib3 1.x send for non-ASCII names and python-multipart's
`parse_options_header` ignores) or declares an image type without a name (React Native,
.NET's ByteArrayContent; RFC 7578 makes the name optional). Starlette's form would make
both text.
"""

from __future__ import annotations

from email.message import Message
from typing import NamedTuple

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from service.errors import BadRequestBody


class Part(NamedTuple):
    """One part of a form: its field name, file name (None for a text field), declared
    content type and bytes. A tuple, and the callbacks gather into plain lists: a split of
    64 parts took 1,478 us instead of 1,608 with dataclasses and bytearrays, one part 54.5
    instead of 65.1 (medians of 21 rounds, bench/form_split.py; python-multipart's parser
    alone: 714 and 29.9)."""

    name: str
    filename: str | None
    content_type: str
    data: bytes

    @property
    def is_file(self) -> bool:
        """Named as a file, or declared as an image."""
        if self.filename is not None:
            return True
        return self.content_type.split(";", 1)[0].strip().lower().startswith("image/")


# What the parser's callbacks gather for one part: its headers (lower-case names) and the
# pieces of its data.
_Collected = tuple[dict[bytes, bytes], list[bytes]]


def parse_form(body: bytes, content_type: str, max_parts: int) -> list[Part]:
    """The parts of a multipart/form-data `body`, in order; BadRequestBody (400) when it
    is malformed, has part headers over python-multipart's limits, or has more than
    `max_parts` parts."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequestBody("the multipart Content-Type has no boundary parameter")
    collected: list[_Collected] = []
    name: list[bytes] = []  # the pieces of the current header line's name and value
    value: list[bytes] = []
    ended = []

    def on_part_begin() -> None:
        if len(collected) == max_parts:
            raise BadRequestBody(f"the form has more than {max_parts} parts")
        collected.append(({}, []))

    def on_header_end() -> None:
        collected[-1][0][b"".join(name).strip().lower()] = b"".join(value).strip()
        name.clear()
        value.clear()

    callbacks = {
        "on_part_begin": on_part_begin,
        "on_header_field": lambda data, start, end: name.append(data[start:end]),
        "on_header_value": lambda data, start, end: value.append(data[start:end]),
        "on_header_end": on_header_end,
        "on_part_data": lambda data, start, end: collected[-1][1].append(data[start:end]),
        "on_end": lambda: ended.append(True),
    }
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        parser.write(body)
        parser.finalize()
    except FormParserError as exc:
        raise BadRequestBody(f"the multipart body is malformed: {exc}") from exc
    if not ended:
        raise BadRequestBody("the multipart body does not end with its closing boundary")
    return [_part(headers, data) for headers, data in collected]


def _part(headers: dict[bytes, bytes], data: list[bytes]) -> Part:
    disposition = headers.get(b"content-disposition")
    if disposition is None:
        raise BadRequestBody("a form part has no Content-Disposition header")
    name, filename = _disposition(disposition)
    return Part(
        _text(name),
        None if filename is None else _text(filename),
        _text(headers.get(b"content-type", b"")),
        b"".join(data),
    )


def _disposition(value: bytes) -> tuple[bytes, bytes | None]:
    """(name, file name or None) of a part's Content-Disposition header."""
    _, options = parse_options_header(value)
    if b"name" not in options:
        raise BadRequestBody("a form part has no name in its Content-Disposition header")
    filename = options.get(b"filename")
    return options[b"name"], _extended_filename(value) if filename is None else filename


def _extended_filename(value: bytes) -> bytes | None:
    """RFC 2231/5987's `filename*` (`utf-8''%E6%95%B0.png`), decoded by the standard
    library's e-mail header parser (the header is at most 4,224 bytes: python-multipart's
    limit bounds its cost)."""
    if b"filename*" not in value.lower():
        return None
    header = Message()
    header["content-disposition"] = value.decode("latin-1")
    try:
        name = header.get_filename()
        return None if name is None else name.encode("utf-8", errors="replace")
    except (LookupError, ValueError, TypeError):
        # An unknown charset, malformed continuations (filename*0*, filename*1...): the part
        # still names a file, which is all that matters here.
        return b""


def _text(value: bytes) -> str:
    # Browsers send UTF-8 field and file names; anything else must not raise.
    return value.decode("utf-8", errors="replace")
