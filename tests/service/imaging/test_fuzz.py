"""Mutated and random uploads: decoding answers with our own errors, never another one, and
any pixels at all become a valid sample or 'no digit'.

A request handler turns a ServiceError into a 4xx; any other exception would be a 500.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from service.errors import ServiceError
from service.imaging.decode import Picture, decode
from service.imaging.mnist import to_mnist_many

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
        picture = decode(data, LIMIT)
    except ServiceError:
        return
    check_pixels(picture)


def check_pixels(picture: Picture) -> None:
    samples = to_mnist_many([picture])
    row = samples.rows[0]
    assert row.shape == (784,) and row.dtype == np.float32
    assert np.isfinite(row).all() and 0.0 <= row.min() and row.max() <= 1.0
    assert (samples.boxes[0] is None) == samples.blank[0]


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


@settings(max_examples=300, deadline=None)
@given(
    grey=hnp.arrays(np.uint8, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=90)),
    with_alpha=st.booleans(),
    alpha_seed=st.integers(0, 2**32 - 1),
)
def test_any_pixels_give_a_sample_or_no_digit(
    grey: np.ndarray, with_alpha: bool, alpha_seed: int
) -> None:
    alpha = None
    if with_alpha:
        alpha = np.random.default_rng(alpha_seed).integers(0, 256, grey.shape).astype(np.float32)
    check_pixels(Picture(grey, alpha))
    check_pixels(Picture(grey.astype(np.float32) * 0.3 + 100))  # dim, and a photo's dtype
