"""Decode the plainest PNGs (8-bit greyscale, no transparency, not interlaced) directly.

An MNIST digit saved as PNG is such a file. Pillow's PNG plugin reads it through Python
chunk parsing and its `ImageFile` machinery: 54 us of a 28x28 digit's 140 us of
preprocessing. Here the chunks are walked with `struct` (CRCs checked), and the image data
goes to Pillow's own zlib + PNG-filter decoder: 19 us, the same pixels. Anything else, or
anything unusual, returns None, and the caller decodes the file the general way, which
also gives the precise error for a broken file.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
from PIL import Image

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# bit depth 8, colour type 0 (greyscale), compression 0, filter method 0, no interlace
PLAIN_GREY = (8, 0, 0, 0, 0)


def _chunks(data: bytes) -> list[tuple[bytes, bytes]] | None:
    """(type, body) of each chunk up to IEND, or None if the layout or a CRC is wrong."""
    chunks, pos = [], len(SIGNATURE)
    while pos + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            return None
        body = data[pos + 8 : end - 4]
        if zlib.crc32(body, zlib.crc32(kind)) != struct.unpack_from(">I", data, end - 4)[0]:
            return None
        if kind == b"IEND":
            return chunks
        chunks.append((kind, body))
        pos = end
    return None  # no IEND


def plain_grey_png(data: bytes, max_side: int, max_pixels: int) -> np.ndarray | None:
    """The (H, W) uint8 pixels of a plain greyscale PNG no larger than the limits, or None
    when the file is anything else."""
    if not data.startswith(SIGNATURE):
        return None
    chunks = _chunks(data)
    if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        return None
    width, height, *layout = struct.unpack(">IIBBBBB", chunks[0][1])
    if tuple(layout) != PLAIN_GREY or not (0 < width <= max_side and 0 < height <= max_side):
        return None
    if width * height > max_pixels or any(kind == b"tRNS" for kind, _ in chunks):
        return None  # too many pixels, or a transparent grey: the general path says
    compressed = b"".join(body for kind, body in chunks if kind == b"IDAT")
    try:
        image = Image.frombytes("L", (width, height), compressed, "zip", "L")
    except (ValueError, OSError):  # truncated or corrupt data: let the general path say
        return None
    return np.frombuffer(image.tobytes(), np.uint8).reshape(height, width)
