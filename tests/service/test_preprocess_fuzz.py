"""Mutated and random uploads: preprocessing answers with our own errors, never another one.

A request handler turns a ServiceError into a 4xx; any other exception would be a 500.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from service.errors import ServiceError
from service.preprocess import preprocess

LIMIT = 1_000_000


def seeds() -> dict[str, bytes]:
    """One small valid file per accepted format, with a digit-like stroke."""
    image = Image.new("L", (40, 32), 255)
    image.paste(0, (18, 4, 23, 28))
    out = {}
    for fmt, img in (("PNG", image), ("JPEG", image.convert("RGB")), ("GIF", image),
                     ("BMP", image), ("WEBP", image.convert("RGBA"))):  # fmt: skip
        buffer = io.BytesIO()
        img.save(buffer, format=fmt)
        out[fmt] = buffer.getvalue()
    return out


SEEDS = seeds()


def check(data: bytes) -> None:
    try:
        sample = preprocess(data, LIMIT)
    except ServiceError:
        return
    assert sample.shape == (784,) and sample.dtype == np.float32
    assert np.isfinite(sample).all() and 0.0 <= sample.min() and sample.max() <= 1.0


@pytest.mark.parametrize("fmt", sorted(SEEDS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_files_give_only_our_errors(fmt: str, data: st.DataObject) -> None:
    raw = bytearray(SEEDS[fmt])
    for _ in range(data.draw(st.integers(1, 8))):
        kind = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = data.draw(st.integers(0, len(raw) - 1))
        if kind == "flip":
            raw[at] = data.draw(st.integers(0, 255))
        elif kind == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del raw[at : at + data.draw(st.integers(1, 16))]
        else:
            del raw[max(at, 1) :]
        if not raw:
            raw = bytearray(b"\0")
    check(bytes(raw))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_give_only_our_errors(data: bytes) -> None:
    check(data)


@settings(max_examples=200, deadline=None)
@given(magic=st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"RIFF"]),
       rest=st.binary(max_size=512))  # fmt: skip
def test_right_magic_random_rest_gives_only_our_errors(magic: bytes, rest: bytes) -> None:
    check(magic + rest)
