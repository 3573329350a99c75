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


def _image_data(data: bytes, max_side: int, max_pixels: int) -> tuple[int, int, bytes] | None:
    """(width, height, compressed image data) of a plain greyscale PNG no larger than the
    limits, or None when the file is anything else."""
    if not data.startswith(SIGNATURE):
        return None
    chunks = _chunks(data)
    if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        return None
    width, height, *layout = struct.unpack(">IIBBBBB", chunks[0][1])
    if tuple(layout) != PLAIN_GREY or not (0 < width <= max_side and 0 < height <= max_side):
        return None
    if width * height > max_pixels or any(kind in (b"tRNS", b"eXIf") for kind, _ in chunks):
        return None  # too many pixels, a transparent grey or an EXIF orientation: the general path
    return width, height, b"".join(body for kind, body in chunks if kind == b"IDAT")


def _pixels(width: int, height: int, compressed: bytes) -> np.ndarray | None:
    """Inflate and unfilter with Pillow's decoder; None for corrupt data."""
    try:
        image = Image.frombytes("L", (width, height), compressed, "zip", "L")
    except (ValueError, OSError):  # truncated or corrupt data: let the general path say
        return None
    return np.frombuffer(image.tobytes(), np.uint8).reshape(height, width)


def _scanlines(width: int, height: int, compressed: bytes) -> bytes | None:
    """The filtered rows, inflated, if the stream holds exactly the image (bounded: a
    small deflate stream must not inflate to gigabytes)."""
    expected = height * (width + 1)
    try:
        raw = zlib.decompressobj().decompress(compressed, expected + 1)
    except zlib.error:
        return None
    return raw if len(raw) == expected else None


def declares_plain_grey(data: bytes, width: int, height: int) -> bool:
    """Whether a file's header (signature and IHDR, nothing further read or checked)
    declares a plain greyscale PNG of `width` x `height` pixels: an MNIST digit saved as
    PNG. The file may still be broken after its header."""
    return (
        data.startswith(SIGNATURE)
        and len(data) >= 33
        and data[8:16] == b"\x00\x00\x00\x0dIHDR"
        and struct.unpack_from(">II5B", data, 16) == (width, height, *PLAIN_GREY)
    )


def plain_grey_png(data: bytes, max_side: int, max_pixels: int) -> np.ndarray | None:
    """The (H, W) uint8 pixels of a plain greyscale PNG no larger than the limits, or None
    when the file is anything else."""
    found = _image_data(data, max_side, max_pixels)
    return None if found is None else _pixels(*found)


def plain_grey_pngs(datas: list[bytes], max_side: int, max_pixels: int) -> list[np.ndarray | None]:
    """`plain_grey_png` of each file. Pillow's decoder costs ~15 us a call whatever the
    size, so the files of one width are unfiltered in one call, as one tall image (28 ->
    9 us per digit in a batch of 64); a file that does not fit that way is decoded alone."""
    found = {
        i: image
        for i, data in enumerate(datas)
        if (image := _image_data(data, max_side, max_pixels))
    }
    by_width: dict[int, dict[int, tuple[int, int, bytes]]] = {}
    for index, image in found.items():
        by_width.setdefault(image[0], {})[index] = image
    pixels: list[np.ndarray | None] = [None] * len(datas)
    for width, images in by_width.items():
        together = _together(width, images) if len(images) > 1 else {}
        for index, image in images.items():
            pixels[index] = together[index] if index in together else _pixels(*image)
    return pixels


def _together(width: int, images: dict[int, tuple[int, int, bytes]]) -> dict[int, np.ndarray]:
    """The pixels of the images of one width that inflate cleanly, unfiltered by one call:
    each image's rows follow a row of zeros, which is what PNG filters take the row above
    an image's first to be, so no image's filters reach into another's rows."""
    rows = {i: raw for i, image in images.items() if (raw := _scanlines(*image)) is not None}
    if len(rows) < 2:
        return {}
    gap = bytes(width + 1)  # filter type 0 (none), all zero
    heights = [images[i][1] + 1 for i in rows]
    tall = zlib.compress(b"".join(gap + raw for raw in rows.values()), 0)  # stored, not packed
    stacked = _pixels(width, sum(heights), tall)
    if stacked is None:  # e.g. a bad filter type in one file: each alone says which
        return {}
    starts = np.cumsum([0, *heights[:-1]]).tolist()
    return {
        i: stacked[start + 1 : start + h] for i, start, h in zip(rows, starts, heights, strict=True)
    }
