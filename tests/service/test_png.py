"""The plain greyscale PNG decoder: Pillow's pixels exactly, and None for anything else."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from service.png import plain_grey_png
from tests.uploads import png

LIMITS = {"max_side": 512, "max_pixels": 512 * 512}


def pillow(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.mark.parametrize("shape", [(28, 28), (1, 1), (3, 500), (512, 512)])
def test_same_pixels_as_pillow(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    # Noise, gradients and flat areas: the encoder picks every PNG row filter among them.
    noise = rng.integers(0, 256, shape, dtype=np.uint8)
    gradient = (np.add.outer(np.arange(shape[0]), np.arange(shape[1])) % 256).astype(np.uint8)
    image = np.where(rng.random(shape) < 0.5, noise, gradient)
    data = png(image)
    decoded = plain_grey_png(data, **LIMITS)
    assert decoded is not None
    np.testing.assert_array_equal(decoded, pillow(data))


def test_several_idat_chunks() -> None:
    image = np.random.default_rng(1).integers(0, 256, (512, 512), dtype=np.uint8)
    data = png(image)
    assert data.count(b"IDAT") > 1  # Pillow splits big image data
    np.testing.assert_array_equal(plain_grey_png(data, **LIMITS), image)


def grey_with_transparency() -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(out, format="PNG", transparency=0)
    return out.getvalue()


def with_bad_crc(data: bytes) -> bytes:
    return data[:29] + bytes([data[29] ^ 1]) + data[30:]  # the IHDR chunk's CRC


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def short_image_data() -> bytes:
    header = struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 29 * 10)  # 10 of 28 rows
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "data",
    [
        png(np.zeros((28, 28, 3), np.uint8)),  # RGB
        png(np.zeros((28, 28, 2), np.uint8)),  # grey + alpha
        png(np.zeros((28, 28), np.uint16)),  # 16-bit
        grey_with_transparency(),
        png(np.zeros((600, 20), np.uint8)),  # beyond the working size
        with_bad_crc(png(np.zeros((28, 28), np.uint8))),
        png(np.zeros((28, 28), np.uint8))[:-12],  # no IEND
        b"GIF89a" + b"\0" * 40,
        b"",
    ],
    ids=[
        "rgb",
        "la",
        "16-bit",
        "trns",
        "too-big",
        "bad-crc",
        "no-iend",
        "gif",
        "empty",
    ],  # fmt: skip
)
def test_anything_else_is_left_to_the_general_path(data: bytes) -> None:
    assert plain_grey_png(data, **LIMITS) is None


def test_the_pixel_limit_is_the_general_paths_to_enforce() -> None:
    data = png(np.zeros((100, 100), np.uint8))
    assert plain_grey_png(data, max_side=512, max_pixels=9_999) is None
    assert plain_grey_png(data, max_side=512, max_pixels=10_000) is not None


def test_image_data_ending_early_reads_as_pillow_reads_it() -> None:
    # Pillow fills the missing rows with 0 rather than failing; so must we, to agree.
    data = short_image_data()
    np.testing.assert_array_equal(plain_grey_png(data, **LIMITS), pillow(data))
