"""Realistic uploads made from MNIST digits: how people will really send them."""

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


def plain(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """The 28x28 MNIST digit itself."""
    return png(digit)


def inverted(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Dark ink on white, 28x28."""
    return png(255 - digit)


def _upscaled(digit: np.ndarray, factor: float) -> Image.Image:
    side = round(28 * factor)
    return Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)


def large_canvas(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """The digit enlarged 3-6x, somewhere off-centre on a 480x360 black canvas."""
    big = _upscaled(digit, rng.uniform(3, 6))
    canvas = Image.new("L", (480, 360))
    x = int(rng.integers(0, 480 - big.width))
    y = int(rng.integers(0, 360 - big.height))
    canvas.paste(big, (x, y))
    return png(np.asarray(canvas))


def rgba_strokes(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Coloured strokes on a transparent 280x280 canvas, as a browser canvas exports."""
    alpha = np.asarray(_upscaled(digit, 10))
    colour = rng.integers(0, 90, 3)  # dark pen of some colour
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., :3] = colour
    rgba[..., 3] = alpha
    return png(rgba, mode="RGBA")


def paper_photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Dark ink on off-white paper with uneven light and sensor noise, as a JPEG."""
    ink = np.asarray(_upscaled(digit, 4), dtype=np.float32) / 255  # 112x112
    rows, cols = np.mgrid[0:112, 0:112] / 112
    paper = rng.uniform(190, 235) + rng.uniform(-20, 20) * rows + rng.uniform(-20, 20) * cols
    pen = rng.uniform(20, 70)
    photo = paper * (1 - ink) + pen * ink + rng.normal(0, 5, ink.shape)
    rgb = np.repeat(np.clip(photo, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    rgb[..., 2] = np.clip(rgb[..., 2].astype(int) - 12, 0, 255)  # warm light
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=75)
    return out.getvalue()


KINDS = {
    "plain": plain,
    "inverted": inverted,
    "large_canvas": large_canvas,
    "rgba_strokes": rgba_strokes,
    "paper_photo": paper_photo,
}


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
