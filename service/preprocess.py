"""Turn an uploaded image into an MNIST sample: pure functions on bytes and arrays.

MNIST itself was made by fitting each digit into a 20x20 box keeping its aspect ratio, then
centring it by centre of mass in a 28x28 field, white ink on black. Real uploads (photos of
paper, canvas drawings with transparency, any size or polarity) go through the same steps:

    decode (bounded) -> greyscale + alpha -> composite -> polarity -> background and noise
    removal -> crop to the ink -> fit 20x20 -> centre of mass to (14, 14) -> [0, 1]

A 28x28 upload is not rescaled, only re-centred, so an MNIST digit passes through unchanged
in effect.
"""

from __future__ import annotations

import functools
import io
import math
import warnings
from collections.abc import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from service.errors import (
    BlankImage,
    ImageTooLarge,
    ServiceError,
    UndecodableImage,
    UnsupportedImage,
)
from service.png import plain_grey_png, plain_grey_pngs

ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
SIDE = 28
BOX = 20
CENTRE = 14.0  # MNIST's centres of mass average (14.0, 14.0) in pixel-index coordinates
WORKING_SIZE = 512  # larger uploads are reduced to about this before any other step
INK_THRESHOLD = 0.1  # fraction of full ink that counts for the bounding box

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


# A decoded upload: greyscale (H, W) in [0, 255] (uint8 or float32) and alpha (or None).
Decoded = tuple[np.ndarray, np.ndarray | None]


def decode(data: bytes, max_pixels: int) -> Decoded:
    """Decode PNG/JPEG/GIF/BMP/WebP bytes into greyscale (H, W) in [0, 255] (uint8 or
    float32) and an alpha channel (or None), refusing other formats and too many pixels
    before decoding."""
    plain = plain_grey_png(data, WORKING_SIZE, max_pixels)
    return (plain, None) if plain is not None else _decode_with_pillow(data, max_pixels)


def _decode_with_pillow(data: bytes, max_pixels: int) -> Decoded:
    """`decode` for anything but a plain greyscale PNG; the errors are worded here."""
    if not data:
        raise UndecodableImage("the upload is empty: send the bytes of a PNG or JPEG image")
    image = _open(data, max_pixels)
    if image.format == "JPEG":
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale, in greyscale: a 12 MP photo then
        # costs a fraction of the time and memory (and passes the pixel limit, which counts
        # the pixels actually decoded), and a digit needs far fewer pixels.
        image.draft("L", (WORKING_SIZE, WORKING_SIZE))
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"the image is {width}x{height} = {width * height} pixels, over the limit of "
            f"{max_pixels} pixels: scale it down before sending"
        )
    if width == 0 or height == 0:
        raise UndecodableImage(f"the image is {width}x{height} pixels")
    try:
        image.load()
        return _grey_and_alpha(image)
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, KeyError) as exc:
        raise UndecodableImage(
            f"the {image.format} image is truncated or corrupt ({type(exc).__name__})"
        ) from exc


def decode_many(datas: list[bytes], max_pixels: int) -> list[Decoded | ServiceError]:
    """`decode` of each upload, in order, or the error it met; the plain greyscale PNGs
    among them are decoded together (`png.plain_grey_pngs`)."""
    plain = plain_grey_pngs(datas, WORKING_SIZE, max_pixels)
    decoded: list[Decoded | ServiceError] = []
    for data, pixels in zip(datas, plain, strict=True):
        try:
            # Not a plain PNG: straight to Pillow, without looking for one again.
            image = (pixels, None) if pixels is not None else _decode_with_pillow(data, max_pixels)
            decoded.append(image)
        except ServiceError as exc:
            decoded.append(exc)
    return decoded


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
        except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError) as exc:
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


def _grey_and_alpha(image: Image.Image) -> Decoded:
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit or float greyscale: stretch to 0..255 (convert("L") would clip instead).
        values = np.asarray(image, dtype=np.float32)
        return values * (255.0 / max(float(values.max()), 1.0)), None
    if image.mode == "L" and max(image.size) <= WORKING_SIZE:
        # Already what we need (an MNIST-like upload): skip convert's copy and the array
        # interface, 15 us of a 28x28 PNG's ~40 us decode.
        return _pixels(image), None
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        image = image.convert("RGBA").convert("LA")
    else:
        image = image.convert("L")
    # Reduce big images to about WORKING_SIZE first (a box filter): every later step is
    # then cheap, and a digit keeps far more pixels than the 20x20 it will become.
    factor = math.ceil(max(image.size) / WORKING_SIZE)
    if factor > 1:
        image = image.reduce(factor)
    if has_alpha:
        la = np.asarray(image, dtype=np.float32)
        return la[..., 0], la[..., 1]
    return np.asarray(image, dtype=np.float32), None


def _pixels(image: Image.Image) -> np.ndarray:
    return np.frombuffer(image.tobytes(), np.uint8).reshape(image.height, image.width)


def to_mnist(grey: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
    """An MNIST-style sample (784,) float32 in [0, 1] from greyscale (H, W) in [0, 255]."""
    samples, blank = to_mnist_stack(grey[None], None if alpha is None else alpha[None])
    if blank[0]:
        raise blank_image()
    return samples[0]


def blank_image() -> BlankImage:
    """The error for an image without a digit."""
    return BlankImage("no digit found: the image is blank or has too little contrast")


def to_mnist_many(images: Sequence[Decoded]) -> tuple[np.ndarray, list[bool]]:
    """`to_mnist_stack` for (grey, alpha) images of any sizes, in their order: the images
    of one size (with or without alpha) go through it together."""
    groups: dict[tuple[tuple[int, ...], bool], list[int]] = {}
    for index, (grey, alpha) in enumerate(images):
        groups.setdefault((grey.shape, alpha is None), []).append(index)
    samples = np.empty((len(images), SIDE * SIDE), np.float32)
    blank = [False] * len(images)
    for (_, opaque), members in groups.items():
        alphas = None if opaque else np.stack([images[i][1] for i in members])  # type: ignore[misc]
        rows, empty = to_mnist_stack(np.stack([images[i][0] for i in members]), alphas)
        samples[members] = rows
        for index, nothing in zip(members, empty, strict=True):
            blank[index] = nothing
    return samples, blank


def to_mnist_stack(
    grey: np.ndarray, alpha: np.ndarray | None = None
) -> tuple[np.ndarray, list[bool]]:
    """MNIST-style samples (N, 784) from N greyscale images of one size (N, H, W), and
    which of them hold no digit (blank or too little contrast: their rows mean nothing).

    Every step works on the whole stack, with the per-image numbers (background, peak,
    centre of mass) as Python floats: one digit costs what it did alone, 64 of them about
    a quarter each (bench/)."""
    ink, blank = ink_map(grey, alpha)
    if ink.shape[1:] != (SIDE, SIDE):
        ink = _boxed(ink, blank)
    return centre_by_mass(ink).reshape(len(ink), -1), blank


def _boxed(ink: np.ndarray, blank: list[bool]) -> np.ndarray:
    """Each image's ink cropped and fitted into the top left of a BOX x BOX patch (zeros
    elsewhere do not move the centre of mass)."""
    patches = np.zeros((len(ink), BOX, BOX), np.float32)
    for patch, image, empty in zip(patches, ink, blank, strict=True):
        if not empty:
            rows, cols = np.nonzero(image > INK_THRESHOLD)
            fitted = fit_box(image[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])
            patch[: fitted.shape[0], : fitted.shape[1]] = fitted
    return patches


def ink_map(grey: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, list[bool]]:
    """Ink intensity in [0, 1], light on dark, with background and its noise removed, for
    a stack (N, H, W) of greyscale images in [0, 255] (and their alpha channels); and
    which of them are blank (no contrast: all zero; any other map reaches 1)."""
    grey = grey.astype(np.float32, copy=True)
    if alpha is not None:
        for index, (image, opacity) in enumerate(zip(grey, alpha, strict=True)):
            if opacity.min() < 255:
                grey[index] = _composite(image, opacity / 255.0)
    # One sort of each border gives its median and 5th and 95th percentiles; np.median and
    # np.percentile cost ~50 us each on a few hundred values (most of a 28x28 request).
    count = len(grey)
    border = grey.reshape(count, -1)[:, _border_indices(*grey.shape[1:])]
    border.sort(axis=1)
    columns, fractions = _quantile_plan(border.shape[1])
    quantiles = [_quantiles(row, fractions) for row in border[:, columns].tolist()]
    inverted = [median > 127 for _, median, _ in quantiles]
    if any(inverted):  # dark ink on light paper: MNIST is the other way round
        grey[inverted] = 255.0 - grey[inverted]
    peaks = grey.reshape(count, -1).max(axis=1).tolist()
    levels = [_levels(*q, inv, p) for q, inv, p in zip(quantiles, inverted, peaks, strict=True)]
    blank = [scale == 0.0 for _, scale, _ in levels]
    if any(background or offset for background, _, offset in levels):
        background, scale, offset = np.array(levels, np.float32).T.reshape(3, count, 1, 1)
        grey -= background
        grey *= scale
        grey -= offset
        np.maximum(grey, 0.0, out=grey)  # np.clip's Python wrapper costs more than both
    else:  # a clean black border, as every MNIST digit has: the same map in fewer passes
        grey *= np.array([scale for _, scale, _ in levels], np.float32).reshape(count, 1, 1)
    return np.minimum(grey, 1.0, out=grey), blank


@functools.cache
def _border_indices(height: int, width: int) -> np.ndarray:
    """Flat indices of the pixels on the edge of a height x width image."""
    index = np.arange(height * width).reshape(height, width)
    return np.concatenate((index[0], index[-1], index[1:-1, 0], index[1:-1, -1]))


_QUANTILES = (0.05, 0.5, 0.95)


@functools.cache
def _quantile_plan(length: int) -> tuple[list[int], list[float]]:
    """For linear-interpolated quantiles (as np.percentile) of a sorted row of `length`:
    the low and high column each reads, and how far between them it lies."""
    positions = [q * (length - 1) for q in _QUANTILES]
    columns = [c for p in positions for c in (int(p), min(int(p) + 1, length - 1))]
    return columns, [p - int(p) for p in positions]


def _quantiles(picked: list[float], fractions: list[float]) -> tuple[float, float, float]:
    """The 5th, 50th and 95th percentiles from the columns `_quantile_plan` named."""
    low5, high5, low50, high50, low95, high95 = picked
    f5, f50, f95 = fractions
    return (
        low5 + (high5 - low5) * f5,
        low50 + (high50 - low50) * f50,
        low95 + (high95 - low95) * f95,
    )


def _levels(
    low: float, median: float, high: float, inverted: bool, peak: float
) -> tuple[float, float, float]:
    """(background, scale, offset) so that clip((grey - background) * scale - offset, 0, 1)
    is the ink map of an image with these border quantiles and (inverted) peak."""
    background, top = (255.0 - median, 255.0 - low) if inverted else (median, high)
    if peak - background < 1.0:
        return 0.0, 0.0, 0.0  # flat: no ink anywhere
    # The border's spread above its median is paper texture, lighting and JPEG noise: an
    # MNIST digit's border is all zero, so this floor is 0 for it and changes nothing.
    floor = min(max((top - background) / (peak - background), 0.0), 0.5)
    return background, 1.0 / ((peak - background) * (1.0 - floor)), floor / (1 - floor)


def _composite(grey: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    # Strokes on a transparent canvas: put them on the background that contrasts with them
    # (dark strokes on white, light strokes on black), so the ink is never lost.
    weight = float(alpha.sum())
    stroke = float((grey * alpha).sum() / weight) if weight > 0 else 0.0
    background = 255.0 if stroke < 128 else 0.0
    return grey * alpha + background * (1.0 - alpha)


def fit_box(crop: np.ndarray, box: int = BOX) -> np.ndarray:
    """Resize so the longer side is `box` pixels, keeping the aspect ratio (as MNIST did)."""
    height, width = crop.shape
    scale = box / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(crop.astype(np.float32), mode="F").resize(
        size, Image.Resampling.LANCZOS
    )
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


@functools.cache
def _moment_weights(height: int, width: int) -> np.ndarray:
    """(height * width, 3): 1, the row and the column of each pixel of a flat image."""
    rows, cols = np.indices((height, width), np.float32).reshape(2, -1)
    return np.stack((np.ones_like(rows), rows, cols), axis=1)


def centre_by_mass(patches: np.ndarray) -> np.ndarray:
    """Paste each of the patches (N, h, w) into a 28x28 field so that its centre of mass
    lands on (14, 14): (N, 28, 28). A patch without mass stays where it is."""
    count, height, width = patches.shape
    # Mass and both first moments of every patch in one matrix product.
    moments = (patches.reshape(count, -1) @ _moment_weights(height, width)).tolist()
    shifts = [
        (round(CENTRE - rows / mass), round(CENTRE - cols / mass)) if mass > 0 else (0, 0)
        for mass, rows, cols in moments
    ]
    if (height, width) == (SIDE, SIDE):
        moved = [i for i, shift in enumerate(shifts) if shift != (0, 0)]
        if not moved:
            return patches.astype(np.float32, copy=False)  # all centred, as MNIST digits are
        field = patches.astype(np.float32)
        field[moved] = 0.0
    else:
        moved, field = list(range(count)), np.zeros((count, SIDE, SIDE), np.float32)
    for index in moved:
        top, left = shifts[index]
        # Clip the paste to the field; a shifted 28x28 input may lose a sliver of border.
        r0, c0 = max(top, 0), max(left, 0)
        r1, c1 = min(top + height, SIDE), min(left + width, SIDE)
        if r1 > r0 and c1 > c0:
            field[index, r0:r1, c0:c1] = patches[index, r0 - top : r1 - top, c0 - left : c1 - left]
    return field


def preprocess(data: bytes, max_pixels: int) -> np.ndarray:
    """Bytes of an uploaded image -> (784,) float32 MNIST sample."""
    grey, alpha = decode(data, max_pixels)
    return to_mnist(grey, alpha)
