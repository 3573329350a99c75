"""Uploads for tests: PNG bytes, a canvas export, and files that lie about their size.

The kinds of real-world upload are made by `training/realworld/uploads.py`."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def png(array: np.ndarray, mode: str | None = None) -> bytes:
    """Encode an array as PNG bytes."""
    out = io.BytesIO()
    Image.fromarray(array, mode=mode).save(out, format="PNG")
    return out.getvalue()


def digit_png() -> bytes:
    """A 28x28 PNG of a bar, 16 px tall: a plain MNIST-like '1' for route-level tests."""
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    return png(digit)


def _upscaled(digit: np.ndarray, factor: float) -> Image.Image:
    side = round(28 * factor)
    return Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)


def rgba_strokes(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Coloured strokes on a transparent 280x280 canvas, as a browser canvas exports."""
    alpha = np.asarray(_upscaled(digit, 10))
    colour = rng.integers(0, 90, 3)  # dark pen of some colour
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., :3] = colour
    rgba[..., 3] = alpha
    return png(rgba, mode="RGBA")


def png_header_only(width: int, height: int) -> bytes:
    """A valid ~100-byte PNG whose header claims width x height (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def gif_bomb(side: int = 20000) -> bytes:
    """A GIF of a few dozen bytes whose logical screen claims side x side pixels."""
    out = io.BytesIO()
    Image.new("L", (4, 4)).save(out, format="GIF")
    small = out.getvalue()
    return small[:6] + struct.pack("<HH", side, side) + small[10:]


def jpeg_repeating_a_scan(side: int, repeats: int) -> bytes:
    """A progressive greyscale JPEG side x side whose last scan comes `repeats` times: the
    decoder does that scan's work each time (issue 15's reproducer: 9000x9000, 3,000)."""
    out = io.BytesIO()
    Image.new("L", (side, side), 255).save(out, format="JPEG", progressive=True, quality=50)
    data = out.getvalue()
    last_scan = data.rindex(b"\xff\xda")
    scan = data[last_scan:-2]  # up to the end-of-image marker
    return data[:last_scan] + scan * repeats + b"\xff\xd9"


def tall_16_bit_png() -> bytes:
    """Issue 15's reproducer: 1 x 8,388,608 pixels of 16-bit grey in about 24 KB."""
    out = io.BytesIO()
    Image.new("I;16", (1, 8_388_608)).save(out, format="PNG")
    return out.getvalue()


FORM_HEADERS = {"content-type": "multipart/form-data; boundary=x"}


def form_body(field: str, files: list[bytes]) -> bytes:
    """A multipart/form-data body (boundary `x`, FORM_HEADERS) with each file as a part
    named `field`."""
    parts = b"".join(
        b'--x\r\nContent-Disposition: form-data; name="%s"; filename="%d.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" % (field.encode(), i) + data + b"\r\n"
        for i, data in enumerate(files)
    )
    return parts + b"--x--\r\n"
