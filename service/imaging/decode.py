"""Bytes of an uploaded image -> its pixels as a viewer shows them, bounded before decoding.

What viewers do, we do: the EXIF orientation is applied (for JPEG, PNG and WebP, which
carry it; the transforms of Pillow's `ImageOps.exif_transpose`), an alpha channel that
carries no information (all 0, as 32-bit BMPs often have, or any other single value) is
ignored, and an animation shows its first frame. Big images are reduced to about
`WORKING_SIZE` (JPEGs by libjpeg's own scaled decoding, others by a box filter, before any
other copy is made): a digit needs far fewer pixels, and every later step is then cheap.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from typing import NamedTuple

import numpy as np
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from service.errors import ImageTooLarge, ServiceError, UndecodableImage, UnsupportedImage
from service.imaging.png import SIGNATURE, plain_grey_png, plain_grey_pngs

ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
# Pillow inflates a PNG's text chunks (zTXt, iTXt) as it opens the file, up to 1 MB each and
# 64 MB a file by default: a 63 KB PNG carrying 60 compressed chunks of zeros cost 0.17 s
# on the event loop (issue 15's attack review). A digit needs none of them; 1 MB in all
# still opens PNGs with an ordinary XMP or ICC text block. Pillow's own knob, set for the
# process (the service reads images nowhere else).
PngImagePlugin.MAX_TEXT_MEMORY = 1024 * 1024
WORKING_SIZE = 256  # pixels on the longer side that later steps work on, at most about
# A progressive JPEG is decoded once per scan, at its full stored size whatever the scaled
# decoding: libjpeg's default script writes 10 scans, and a 9000x9000 file repeating one
# scan 3,000 times burned 16 s of CPU (issue 15). libjpeg-turbo advises a scan limit for
# untrusted files (TJPARAM_SCANLIMIT; its fuzzers use 500); ours bounds the scans and the
# work, scans x stored pixels: 512 M is a 48 MP phone photo of 10 scans, or 9000x9000 of
# 6, about a quarter of a second here (BENCHMARKS.md, issue 15).
MAX_JPEG_SCANS = 64
MAX_JPEG_SCAN_PIXELS = 512 * 1024 * 1024
# Longest side opened, in pixels (WebP's own limit is 16,383). Pillow keeps one allocation
# per row: a 24 KB PNG of 1 x 8,388,608 pixels, under the pixel limit, cost 190 MB and
# 0.3 s of decoding; no picture of a digit is that thin.
MAX_SIDE = 16_384
_START_OF_SCAN = b"\xff\xda"  # never inside entropy-coded data, where 0xFF is stuffed
# Markers (and fill bytes) before the first scan: Pillow walks them one by one in Python as
# it opens the file, and an 8 MB file of 2 million empty APP1 segments took 3.1 s to open
# (issue 15's attack review). A camera's JPEG has 10-20 segments; EXIF, ICC and XMP blocks
# split over APP segments add a few dozen at most.
MAX_JPEG_SEGMENTS = 256

# Magic bytes of the formats we read, to say "truncated" rather than "unknown".
_OWN_FORMATS = (
    (b"\x89PNG", "PNG"),
    (b"\xff\xd8", "JPEG"),
    (b"GIF8", "GIF"),
    (b"BM", "BMP"),
    (b"RIFF", "WebP"),
)
# Magic bytes of formats people send that we do not read: named, so the 415 says which.
_OTHER_FORMATS = (
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%!PS", "PostScript/EPS"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"%PDF", "PDF"),
    (b"SIMPLE  =", "FITS"),
    (b"8BPS", "Photoshop"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"<svg", "SVG"),
    (b"<?xml", "XML/SVG"),
)
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, KeyError)
_WIDE = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")  # greyscale wider than 8 bits
_KEPT = ("L", "LA", "RGB", "RGBA")  # modes reduced and turned as they are
# What a viewer does for each EXIF orientation (the table of Pillow's exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class Picture(NamedTuple):
    """A decoded upload, upright as viewers show it.

    `grey` is (H, W) in [0, 255], uint8 or float32; `alpha` the (H, W) opacity in [0, 255],
    or None when the upload is opaque or its alpha carries no information; `scale` the
    upload's pixels per pixel of `grey` (above 1 when a big upload was reduced). A named
    tuple: one is made per request, and a frozen dataclass costs several times as much.
    """

    grey: np.ndarray
    alpha: np.ndarray | None = None
    scale: float = 1.0


def decode(data: bytes, max_pixels: int) -> Picture:
    """Decode PNG/JPEG/GIF/BMP/WebP bytes, refusing other formats (UnsupportedImage), too
    many pixels (ImageTooLarge, before any pixel is decoded) and broken files
    (UndecodableImage)."""
    plain = plain_grey_png(data, WORKING_SIZE, max_pixels)
    return Picture(plain) if plain is not None else _decode_with_pillow(data, max_pixels)


def decode_many(datas: list[bytes], max_pixels: int) -> list[Picture | ServiceError]:
    """`decode` of each upload, in order, or the error it met; the plain greyscale PNGs
    among them are decoded together (`png.plain_grey_pngs`)."""
    plain = plain_grey_pngs(datas, WORKING_SIZE, max_pixels)
    decoded: list[Picture | ServiceError] = []
    for data, pixels in zip(datas, plain, strict=True):
        try:
            # Not a plain PNG: straight to Pillow, without looking for one again.
            decoded.append(
                Picture(pixels) if pixels is not None else _decode_with_pillow(data, max_pixels)
            )
        except ServiceError as exc:
            # Without its traceback, nor the exception it was raised from (Pillow's, whose
            # traceback holds the same): this frame, whose list holds the error, would be
            # in a cycle keeping each refused upload's buffers until a full collection.
            exc.__cause__ = exc.__context__ = None
            decoded.append(exc.with_traceback(None))
    return decoded


def _decode_with_pillow(data: bytes, max_pixels: int) -> Picture:
    """`decode` for anything but a plain greyscale PNG; the errors are worded here."""
    if not data:
        raise UndecodableImage(
            "the upload is empty: send the bytes of a PNG, JPEG, GIF, BMP or WebP image"
        )
    if data.startswith(b"\xff\xd8"):
        check_jpeg_segments(data)
    image = _open(data, max_pixels)
    width, height = image.size
    if max(width, height) > MAX_SIDE:
        raise ImageTooLarge(
            f"the image is {width}x{height} pixels, over the limit of {MAX_SIDE} pixels a "
            "side: send the digit as a picture of ordinary proportions"
        )
    if image.format == "JPEG":
        check_jpeg_scans(data, width * height)
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale, in greyscale: a 12 MP photo then
        # costs a fraction of the time and memory (and passes the pixel limit, which counts
        # the pixels actually decoded), and a digit needs far fewer pixels.
        image.draft("L", (WORKING_SIZE, WORKING_SIZE))
    decoded = image.size[0] * image.size[1]
    if decoded > max_pixels:
        raise ImageTooLarge(
            f"the image is {image.size[0]}x{image.size[1]} = {decoded} pixels, over the limit "
            f"of {max_pixels} pixels: scale it down before sending"
        )
    if decoded == 0:
        raise UndecodableImage(f"the image is {width}x{height} pixels")
    try:
        image.load()
        return _picture(image, width)
    except _DECODE_ERRORS as exc:
        raise UndecodableImage(
            f"the {image.format} image is truncated or corrupt ({type(exc).__name__})"
        ) from exc


def _open(data: bytes, max_pixels: int) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
        except UnidentifiedImageError:
            pass
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise ImageTooLarge(
                f"the image is over the limit of {max_pixels} pixels: scale it down before sending"
            ) from exc
        except _DECODE_ERRORS as exc:
            raise UndecodableImage(f"cannot read the image header ({type(exc).__name__})") from exc
    for magic, name in _OWN_FORMATS:
        if data.startswith(magic):
            raise UndecodableImage(
                f"the upload looks like a {name} image but is truncated or corrupt"
            )
    head = data[:64].lstrip()
    for magic, name in _OTHER_FORMATS:
        if head.startswith(magic):
            raise UnsupportedImage(
                f"{name} images are not supported: send PNG, JPEG, GIF, BMP or WebP"
            )
    raise UndecodableImage(
        "the upload is not a PNG, JPEG, GIF, BMP or WebP image (cannot identify its format)"
    )


def _picture(image: Image.Image, stored_width: int) -> Picture:
    """The loaded first frame as a Picture: reduced to about WORKING_SIZE in its own mode
    first (so no full-size copy is made), then turned upright and made greyscale.
    `stored_width` is the upload's width before any scaled decoding."""
    turn = orientation(image)
    if image.mode in _WIDE:
        image = image.convert("F")  # 16-bit or float: kept wide, stretched below
    elif image.mode not in _KEPT:
        has_alpha = image.mode in ("PA", "RGBa") or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")  # palette, 1-bit, CMYK...
    factor = math.ceil(max(image.size) / WORKING_SIZE)
    if factor > 1:
        image = image.reduce(factor)  # a box filter: every upload pixel counts
    if turn != 1:
        image = image.transpose(_UPRIGHT[turn])
    scale = stored_width / (image.height if turn in (5, 6, 7, 8) else image.width)
    if image.mode == "F":  # stretch to 0..255 (convert("L") would clip instead)
        values = np.asarray(image, dtype=np.float32)
        return Picture(values * (255.0 / max(float(values.max()), 1.0)), None, scale)
    if image.mode in ("L", "RGB"):
        return Picture(_pixels(image.convert("L")), None, scale)
    grey, alpha = np.asarray(image.convert("LA")).transpose(2, 0, 1)
    if alpha.min() == alpha.max():  # all 0 (a 32-bit BMP), all 255, or any single value
        # uint8, as an opaque upload's: what is_mnist_like and true_resolution take.
        return Picture(np.ascontiguousarray(grey), None, scale)
    return Picture(grey.astype(np.float32), alpha.astype(np.float32), scale)


def check_jpeg_scans(data: bytes, stored_pixels: int) -> None:
    """Refuse (ImageTooLarge), before decoding, a JPEG of more than MAX_JPEG_SCANS scans
    or of more than MAX_JPEG_SCAN_PIXELS scans x stored pixels (width x height in the file).

    Counts Start-Of-Scan markers over the whole file: an upper bound on the scans (an EXIF
    thumbnail adds its own), as JPEG stuffs every 0xFF byte of the compressed data (ITU-T
    T.81, B.1.1.5), so no marker hides in it."""
    scans = data.count(_START_OF_SCAN)
    if scans > MAX_JPEG_SCANS or scans * stored_pixels > MAX_JPEG_SCAN_PIXELS:
        raise ImageTooLarge(
            f"the JPEG has {scans} scans of {stored_pixels} pixels, over the limits of "
            f"{MAX_JPEG_SCANS} scans and {MAX_JPEG_SCAN_PIXELS} scans x pixels: save it "
            "smaller, or as a baseline JPEG or a PNG"
        )


def check_jpeg_segments(data: bytes) -> None:
    """Refuse (ImageTooLarge) a JPEG with more than MAX_JPEG_SEGMENTS markers or fill bytes
    before its first scan, walking its marker segments (ITU-T T.81, B.1.1) up to that many:
    the walk Pillow would do, bounded. Anything that is not a marker where one belongs ends
    the walk: Pillow says what is wrong with the file."""
    position, steps = 2, 0
    while position + 4 <= len(data) and data[position] == 0xFF:
        steps += 1
        if steps > MAX_JPEG_SEGMENTS:
            raise ImageTooLarge(
                f"the JPEG has more than {MAX_JPEG_SEGMENTS} segments before its image "
                "data: save it again, without the extra metadata"
            )
        marker = data[position + 1]
        if marker == 0xDA:  # start of scan: the headers are over
            return
        if marker == 0xFF:  # a fill byte
            position += 1
        elif 0xD0 <= marker <= 0xD9 or marker == 0x01:  # markers without a length
            position += 2
        else:
            position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")


def orientation(image: Image.Image) -> int:
    """The EXIF orientation (1-8) of an opened image; 1 when absent or unreadable.

    Not `ImageOps.exif_transpose`: it rewrites the EXIF block of the image it returns and
    raises on malformed tags (838 of 3,000 fuzzed blocks that held an orientation, issue
    13's note), while only the orientation matters here, and a broken EXIF block must not
    fail the pixels. The transforms are its table (`_UPRIGHT`).

    Only the EXIF block counts (a JPEG's APP1, a PNG's eXIf, a WebP's EXIF chunk), as in
    browsers: not `Image.getexif()`, which also takes an orientation from XMP or a PNG
    text chunk, that neither browsers nor the plain-PNG path (`png`) read."""
    block = image.info.get("exif")
    if not block:
        return 1
    try:
        exif = Image.Exif()
        exif.load(block)
        value = exif.get(0x0112, 1)
    except Exception:  # any failure to read EXIF means "no orientation", never an error
        return 1
    return value if isinstance(value, int) and value in _UPRIGHT else 1


def declared_pixels(data: bytes) -> int | None:
    """width x height as the upload's header declares them, without decoding any pixel
    (a PNG's IHDR, else Pillow's lazy open); None when the header cannot be read."""
    if data.startswith(SIGNATURE) and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width * height
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
                return image.size[0] * image.size[1]
    except (Image.DecompressionBombError, UnidentifiedImageError, *_DECODE_ERRORS):
        return None


def _pixels(image: Image.Image) -> np.ndarray:
    return np.frombuffer(image.tobytes(), np.uint8).reshape(image.height, image.width)
